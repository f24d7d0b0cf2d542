package projections

// All lists every read model's Factory, in a stable order. Each instance's
// query methods are on its concrete type (the runner's Current(name) returns
// the serving instance; type-assert it):
//
//	*Leaderboard  Board(ctx, db, BoardQuery) (Board, error)                  "leaderboard"
//	              Scorecard() *Scorecard: the members' weekly and monthly cards
//	*Scorecard    Week(ctx, db, ScorecardQuery) (ScorecardWeek, error)
//	              Month(ctx, db, ScorecardQuery) (ScorecardMonth, error)
//	*Evaluations  Evaluations(ctx, db, EvaluationQuery) (EvaluationPage, error) "evaluations"
//	*Promotions   Promotions(ctx, db, PromotionQuery) (PromotionPage, error)  "promotions"
//	*Rewards      Rewards(ctx, db, RewardQuery) (RewardPage, error)           "rewards"
//	*Audit        Trail(ctx, db, AuditQuery) (AuditPage, error)               "audit"
//	*Honour       Roll(ctx, db, HonourQuery) (HonourPage, error)              "honour"
//	*Suggestions  Board(ctx, db, SuggestionQuery) (SuggestionPage, error)     "suggestions"
//	*Directory    Directory(ctx, db, keys, DirectoryQuery) (DirectoryPage, error) "directory"
//
// Every query takes a Queryer (*sql.DB, *sql.Conn or *sql.Tx on the
// read-model database), returns the ledger position its result reflects,
// and wraps ErrInvalidQuery when the query itself is wrong (HTTP 400). List
// queries are cursor-paginated: pass the previous page's Next as Cursor;
// Limit 0 means DefaultLimit, at most MaxLimit.
func All() []Factory {
	return []Factory{
		NewLeaderboard,
		NewEvaluations,
		NewPromotions,
		NewRewards,
		NewAudit,
		NewHonour,
		NewSuggestions,
		NewDirectory,
	}
}
