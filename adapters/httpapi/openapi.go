package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"

	"perfledger/domain"
)

// The OpenAPI 3 document is generated from the route table, so a route
// cannot be served without being documented.

type oaDoc struct {
	OpenAPI    string                `json:"openapi"`
	Info       oaInfo                `json:"info"`
	Paths      map[string]oaPathItem `json:"paths"`
	Components oaComponents          `json:"components"`
	Security   []map[string][]string `json:"security"`
}

type oaInfo struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

type oaPathItem map[string]*oaOperation // lower-case method → operation

type oaOperation struct {
	OperationID string                `json:"operationId"`
	Summary     string                `json:"summary"`
	Description string                `json:"description,omitempty"`
	Tags        []string              `json:"tags,omitempty"`
	Parameters  []oaParameter         `json:"parameters,omitempty"`
	RequestBody *oaRequestBody        `json:"requestBody,omitempty"`
	Responses   map[string]oaResponse `json:"responses"`
	Security    []map[string][]string `json:"security,omitempty"`
	Roles       []Role                `json:"x-roles,omitempty"`
}

type oaParameter struct {
	Name        string   `json:"name"`
	In          string   `json:"in"`
	Required    bool     `json:"required"`
	Description string   `json:"description,omitempty"`
	Schema      oaSchema `json:"schema"`
}

type oaRequestBody struct {
	Required bool                   `json:"required"`
	Content  map[string]oaMediaType `json:"content"`
}

type oaMediaType struct {
	Schema oaSchema `json:"schema"`
}

type oaResponse struct {
	Description string                 `json:"description"`
	Content     map[string]oaMediaType `json:"content,omitempty"`
}

type oaComponents struct {
	SecuritySchemes map[string]map[string]string `json:"securitySchemes"`
	Schemas         map[string]oaSchema          `json:"schemas"`
}

type oaSchema struct {
	Ref                  string              `json:"$ref,omitempty"`
	Type                 string              `json:"type,omitempty"`
	Format               string              `json:"format,omitempty"`
	Description          string              `json:"description,omitempty"`
	Properties           map[string]oaSchema `json:"properties,omitempty"`
	Required             []string            `json:"required,omitempty"`
	Items                *oaSchema           `json:"items,omitempty"`
	AdditionalProperties any                 `json:"additionalProperties,omitempty"`
	Nullable             bool                `json:"nullable,omitempty"`
}

var pathParamRE = regexp.MustCompile(`\{([a-zA-Z_][a-zA-Z0-9_]*)\}`)

func buildOpenAPI(routes []route) ([]byte, error) {
	doc := oaDoc{
		OpenAPI: "3.0.3",
		Info: oaInfo{
			Title:   "Performance ledger API",
			Version: "1",
			Description: "Every write appends events and answers with the stream revision and the global position; " +
				"reads accept min_position and say which position they reflect (Ledger-Position header and position field). " +
				"Errors: {\"error\":{\"code\",\"message\"}}. Lists: cursor, limit, next_cursor; Accept: text/csv for tables.",
		},
		Paths: map[string]oaPathItem{},
		Components: oaComponents{
			SecuritySchemes: map[string]map[string]string{"bearer": {"type": "http", "scheme": "bearer"}},
			Schemas:         map[string]oaSchema{},
		},
		Security: []map[string][]string{{"bearer": {}}},
	}
	errSchema := oaSchema{Type: "object", Properties: map[string]oaSchema{
		"error": {Type: "object", Properties: map[string]oaSchema{
			"code":    {Type: "string"},
			"message": {Type: "string"},
		}, Required: []string{"code", "message"}},
	}, Required: []string{"error"}}
	doc.Components.Schemas["Error"] = errSchema
	errResp := func(d string) oaResponse {
		return oaResponse{Description: d, Content: map[string]oaMediaType{"application/json": {Schema: oaSchema{Ref: "#/components/schemas/Error"}}}}
	}
	sg := &schemaGen{defs: doc.Components.Schemas}
	for i := range routes {
		rt := &routes[i]
		op := &oaOperation{
			OperationID: operationID(rt),
			Summary:     rt.summary,
			Tags:        []string{rt.tag},
			Responses:   map[string]oaResponse{},
			Roles:       rt.roles,
		}
		if rt.public {
			op.Security = []map[string][]string{}
		}
		for _, m := range pathParamRE.FindAllStringSubmatch(rt.path, -1) {
			op.Parameters = append(op.Parameters, oaParameter{Name: m[1], In: "path", Required: true, Schema: oaSchema{Type: "string"}})
		}
		for _, q := range rt.query {
			op.Parameters = append(op.Parameters, oaParameter{Name: q.name, In: "query", Required: q.required, Description: q.desc, Schema: oaSchema{Type: "string"}})
		}
		if !rt.write && !rt.public {
			op.Parameters = append(op.Parameters, oaParameter{Name: "min_position", In: "query",
				Description: "wait (bounded) until the read models reflect this ledger position", Schema: oaSchema{Type: "string"}})
		}
		if rt.list {
			op.Parameters = append(op.Parameters,
				oaParameter{Name: "cursor", In: "query", Description: "next_cursor of the previous page", Schema: oaSchema{Type: "string"}},
				oaParameter{Name: "limit", In: "query", Description: "page size, 1–1000 (default 50)", Schema: oaSchema{Type: "integer"}})
		}
		if rt.write && !rt.secret {
			op.Parameters = append(op.Parameters, oaParameter{Name: "Idempotency-Key", In: "header",
				Description: "becomes the command id; the same key and body replayed returns the same response and appends nothing",
				Schema:      oaSchema{Type: "string"}})
		}
		if rt.body != nil {
			op.RequestBody = &oaRequestBody{Required: !rt.bodyOptional, Content: map[string]oaMediaType{
				"application/json": {Schema: sg.schema(reflect.TypeOf(rt.body))},
			}}
		}
		okStatus := "200"
		if rt.write {
			okStatus = "201"
		}
		okResp := oaResponse{Description: "success"}
		if rt.resp != nil {
			okResp.Content = map[string]oaMediaType{"application/json": {Schema: sg.schema(reflect.TypeOf(rt.resp))}}
			if rt.list {
				okResp.Content["text/csv"] = oaMediaType{Schema: oaSchema{Type: "string", Description: "the items as CSV with a header row; Ledger-Position and Ledger-Next-Cursor headers"}}
			}
		}
		op.Responses[okStatus] = okResp
		op.Responses["400"] = errResp("invalid input")
		if !rt.public {
			op.Responses["401"] = errResp("missing, unknown or revoked token")
			op.Responses["403"] = errResp("the role or scope does not allow it")
			op.Responses["429"] = errResp("rate limited; see Retry-After")
		}
		if rt.write {
			op.Responses["404"] = errResp("a referenced member, team … does not exist")
			op.Responses["409"] = errResp("conflict: already done, concurrent change, or Idempotency-Key reused for another request")
			op.Responses["413"] = errResp("body over 1 MiB")
			op.Responses["415"] = errResp("body not sent as application/json")
			op.Responses["422"] = errResp("a business rule forbids it")
		} else if !rt.public {
			op.Responses["404"] = errResp("not found")
			op.Responses["503"] = errResp("min_position not reached in time")
		}
		op.Responses["500"] = errResp("internal error (details are logged, never returned)")
		item := doc.Paths[rt.path]
		if item == nil {
			item = oaPathItem{}
			doc.Paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return json.MarshalIndent(doc, "", "  ")
}

func operationID(rt *route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.method))
	for _, part := range strings.Split(strings.TrimPrefix(rt.path, "/v1/"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// schemaGen turns Go types into OpenAPI schemas, named structs as
// components.
type schemaGen struct {
	defs map[string]oaSchema
}

var (
	fixedType    = reflect.TypeFor[domain.Fixed]()
	rawJSONType  = reflect.TypeFor[json.RawMessage]()
	durationType = reflect.TypeFor[time.Duration]()
)

func (g *schemaGen) schema(t reflect.Type) oaSchema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return oaSchema{Type: "string", Format: "date-time"}
	case fixedType:
		return oaSchema{Type: "string", Format: "decimal", Description: `exact decimal, e.g. "100.2170"`}
	case rawJSONType:
		return oaSchema{}
	case durationType:
		return oaSchema{Type: "integer"}
	}
	switch t.Kind() {
	case reflect.String:
		return oaSchema{Type: "string"}
	case reflect.Bool:
		return oaSchema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return oaSchema{Type: "integer"}
	case reflect.Float32, reflect.Float64:
		return oaSchema{Type: "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return oaSchema{Type: "string", Format: "byte"}
		}
		it := g.schema(t.Elem())
		return oaSchema{Type: "array", Items: &it}
	case reflect.Map:
		return oaSchema{Type: "object", AdditionalProperties: g.schema(t.Elem())}
	case reflect.Interface:
		return oaSchema{}
	case reflect.Struct:
		name := schemaName(t)
		if name == "" {
			return g.object(t)
		}
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = oaSchema{Type: "object"} // placeholder breaks recursion
			g.defs[name] = g.object(t)
		}
		return oaSchema{Ref: "#/components/schemas/" + name}
	}
	return oaSchema{}
}

func schemaName(t reflect.Type) string {
	n := t.Name()
	if n == "" {
		return ""
	}
	if i := strings.IndexByte(n, '['); i >= 0 { // generic: Page[pkg.T] → PageT
		inner := n[i+1 : len(n)-1]
		if j := strings.LastIndexByte(inner, '.'); j >= 0 {
			inner = inner[j+1:]
		}
		n = n[:i] + strings.ToUpper(inner[:1]) + inner[1:]
	}
	pkg := t.PkgPath()
	switch {
	case strings.HasSuffix(pkg, "/domain"):
		return n
	case strings.HasSuffix(pkg, "/projections"):
		return "View" + n
	}
	return strings.ToUpper(n[:1]) + n[1:]
}

func (g *schemaGen) object(t reflect.Type) oaSchema {
	s := oaSchema{Type: "object", Properties: map[string]oaSchema{}}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs := g.schema(f.Type)
		if f.Type.Kind() == reflect.Pointer {
			fs.Nullable = true
		}
		s.Properties[name] = fs
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			s.Required = append(s.Required, name)
		}
	}
	return s
}

// documented reports whether method path is in the document (tests).
func documented(doc map[string]map[string]json.RawMessage, method, path string) bool {
	ops, ok := doc[path]
	if !ok {
		return false
	}
	_, ok = ops[strings.ToLower(method)]
	return ok || method == http.MethodHead
}
