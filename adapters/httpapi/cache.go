package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"perfledger/domain"
)

// responseCache keeps encoded answers of public reads (the same for every
// principal) keyed by route, query and format, each with the read-model
// position it reflects. An entry is served only while the read model's
// checkpoint is still at that position, so a cached answer is always the
// answer a fresh query would give. Lookups take no lock (sync.Map).
type responseCache struct {
	m    sync.Map // string → *cachedResponse
	n    sync.Mutex
	size int
}

type cachedResponse struct {
	pos         domain.Position
	contentType string
	body        []byte
	next        string
}

const maxCachedResponses = 4096

func (rc *responseCache) get(key string) (*cachedResponse, bool) {
	v, ok := rc.m.Load(key)
	if !ok {
		return nil, false
	}
	return v.(*cachedResponse), true
}

func (rc *responseCache) put(key string, e *cachedResponse) {
	if _, loaded := rc.m.Swap(key, e); loaded {
		return
	}
	rc.n.Lock()
	rc.size++
	if rc.size > maxCachedResponses {
		rc.m.Clear()
		rc.size = 0
	}
	rc.n.Unlock()
}

// serveCached answers a read of a cached route.
func (s *Server) serveCached(w http.ResponseWriter, c *call) error {
	csvOut := wantsCSV(c.r)
	q := c.r.URL.Query()
	q.Del("min_position")
	key := c.rt.path + "\x00" + c.r.URL.Path + "?" + q.Encode()
	if csvOut {
		key += "\x00csv"
	}
	now, err := s.cfg.ReadModels.Checkpoint(c.rt.model)
	if err != nil {
		return err
	}
	if e, ok := s.cache.get(key); ok && e.pos == now {
		writeCached(w, e)
		return nil
	}
	v, err := c.rt.handle(c)
	if err != nil {
		return err
	}
	e := &cachedResponse{pos: c.position}
	var buf bytes.Buffer
	if t, ok := v.(tabular); ok && csvOut {
		if err := encodeCSV(&buf, t.rows()); err != nil {
			return err
		}
		e.contentType, e.next = "text/csv; charset=utf-8", t.cursor()
	} else {
		if err := json.NewEncoder(&buf).Encode(v); err != nil {
			return err
		}
		e.contentType = "application/json"
	}
	e.body = buf.Bytes()
	if !c.position.IsZero() {
		s.cache.put(key, e)
	}
	writeCached(w, e)
	return nil
}

func writeCached(w http.ResponseWriter, e *cachedResponse) {
	h := w.Header()
	h.Set("Content-Type", e.contentType)
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	if !e.pos.IsZero() {
		h.Set("Ledger-Position", e.pos.String())
	}
	if e.next != "" {
		h.Set("Ledger-Next-Cursor", e.next)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.body)
}
