package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON encodes v straight into a pooled buffer and writes it with its
// length. An encoding failure is a programming error: it answers 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error; it has been logged"}}` + "\n")
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Page is one page of a list. Position is the ledger position the data
// reflects; NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	Position   string `json:"position"`
}

// tabular is implemented by every list response, so that it can be rendered
// as CSV.
type tabular interface {
	rows() any // a slice of structs
	cursor() string
	position() string
}

func (p Page[T]) rows() any        { return p.Items }
func (p Page[T]) cursor() string   { return p.NextCursor }
func (p Page[T]) position() string { return p.Position }
func (p Page[T]) emptyToSlice() Page[T] {
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// wantsCSV reports whether the client asked for text/csv.
func wantsCSV(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return a != "" && strings.Contains(a, "text/csv")
}

// writeCSV renders a slice of structs as CSV with a header row made of the
// JSON field names; nested values are written as JSON. The position and the
// next cursor travel in headers.
func writeCSV(w http.ResponseWriter, t tabular) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := encodeCSV(buf, t.rows()); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Ledger-Position", t.position())
	if c := t.cursor(); c != "" {
		h.Set("Ledger-Next-Cursor", c)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

type csvColumn struct {
	name  string
	index []int
}

var csvColumnsCache sync.Map // reflect.Type → []csvColumn

func csvColumns(t reflect.Type) []csvColumn {
	if c, ok := csvColumnsCache.Load(t); ok {
		return c.([]csvColumn)
	}
	var cols []csvColumn
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		cols = append(cols, csvColumn{name: name, index: f.Index})
	}
	csvColumnsCache.Store(t, cols)
	return cols
}

func encodeCSV(buf *bytes.Buffer, slice any) error {
	v := reflect.ValueOf(slice)
	if v.Kind() != reflect.Slice {
		return fmt.Errorf("csv: want a slice, got %T", slice)
	}
	et := v.Type().Elem()
	for et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	cw := csv.NewWriter(buf)
	if et.Kind() != reflect.Struct {
		_ = cw.Write([]string{"value"})
		for i := range v.Len() {
			_ = cw.Write([]string{csvCell(v.Index(i))})
		}
		cw.Flush()
		return cw.Error()
	}
	cols := csvColumns(et)
	rec := make([]string, len(cols))
	for i, c := range cols {
		rec[i] = c.name
	}
	_ = cw.Write(rec)
	for i := range v.Len() {
		row := reflect.Indirect(v.Index(i))
		for j, c := range cols {
			f, err := row.FieldByIndexErr(c.index)
			if err != nil {
				rec[j] = ""
				continue
			}
			rec[j] = csvCell(f)
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	stringerType  = reflect.TypeFor[fmt.Stringer]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// csvCell renders one value: text as is, numbers in full, times in RFC 3339,
// anything with a JSON form (decimals, nested structs, lists) as that JSON
// without surrounding quotes for plain strings.
func csvCell(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	if v.Type().Implements(marshalerType) || (v.CanAddr() && v.Addr().Type().Implements(marshalerType)) {
		b, err := json.Marshal(v.Interface())
		if err == nil {
			var s string
			if json.Unmarshal(b, &s) == nil {
				return s
			}
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	}
	if v.Type().Implements(stringerType) {
		return v.Interface().(fmt.Stringer).String()
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return ""
	}
	return string(b)
}

// offsetCursor is the cursor of lists paginated in this package (by offset
// into a deterministic order). Cursors are opaque to clients.
func encodeOffsetCursor(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(off)))
}

func decodeOffsetCursor(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !bytes.HasPrefix(b, []byte("o:")) {
		return 0, errInvalid(`query parameter "cursor": not a cursor this server returned; start again without it`)
	}
	n, err := strconv.Atoi(string(b[2:]))
	if err != nil || n < 0 {
		return 0, errInvalid(`query parameter "cursor": not a cursor this server returned; start again without it`)
	}
	return n, nil
}

// paginate cuts items (already in their final order) at cursor, limit.
func paginate[T any](items []T, cursor string, limit int) ([]T, string, error) {
	off, err := decodeOffsetCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if off >= len(items) {
		return []T{}, "", nil
	}
	end := min(off+limit, len(items))
	next := ""
	if end < len(items) {
		next = encodeOffsetCursor(end)
	}
	return items[off:end], next, nil
}
