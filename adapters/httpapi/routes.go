package httpapi

// routeTable lists every API route. The router, the OpenAPI document and the
// route × role tests are all built from it.
func (s *Server) routeTable() []route {
	var rs []route
	rs = append(rs, s.commandRoutes()...)
	rs = append(rs, asOfRoutes(s.queryRoutes())...)
	rs = append(rs, s.memberRoutes()...)
	rs = append(rs, asOfRoutes(s.readRoutes())...)
	rs = append(rs, s.adminRoutes()...)
	rs = append(rs, s.verifyRoute())
	return rs
}

// asOfRoutes marks read-model routes as taking as_of (a past recorded time)
// and documents it. A route that already has an as_of parameter (the
// directory's date) reads only a full time as one.
func asOfRoutes(rs []route) []route {
	for i := range rs {
		rt := &rs[i]
		rt.asOf = true
		has := false
		for _, q := range rt.query {
			has = has || q.name == asOfParam
		}
		if has {
			rt.asOfTimeOnly = true
		} else {
			rt.query = append(rt.query, asOfQuery)
		}
	}
	return rs
}
