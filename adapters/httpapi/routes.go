package httpapi

// routeTable lists every API route. The router, the OpenAPI document and the
// route × role tests are all built from it.
func (s *Server) routeTable() []route {
	var rs []route
	rs = append(rs, s.commandRoutes()...)
	rs = append(rs, s.queryRoutes()...)
	rs = append(rs, s.memberRoutes()...)
	rs = append(rs, s.readRoutes()...)
	rs = append(rs, s.adminRoutes()...)
	rs = append(rs, s.verifyRoute())
	return rs
}
