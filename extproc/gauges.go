package extproc

import (
	"context"
	"time"
)

// RefreshBudgetGauges sets tollgate_budget_spent_usd for every tenant with a
// cap from the ledger. It runs off the request path (a ticker in main),
// so the gauges cost no ledger round trip per request.
func (s *Server) RefreshBudgetGauges(ctx context.Context) {
	if s.budgets == nil {
		return
	}
	rt := s.rt.Load()
	for _, tenant := range rt.cfg.TenantIDs() {
		if caps := s.budgets.CapsFor(tenant); caps.Daily == 0 && caps.Monthly == 0 {
			continue // uncapped tenants are not reserved against, so the ledger has nothing
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		spend, err := s.budgets.Spent(cctx, tenant)
		cancel()
		if err != nil {
			s.log.Warn("reading budget spend failed", "tenant", tenant, "err", err)
			continue
		}
		s.metrics.BudgetSpent.WithLabelValues(tenant, "daily").Set(spend.Daily.USD())
		s.metrics.BudgetSpent.WithLabelValues(tenant, "monthly").Set(spend.Monthly.USD())
	}
}
