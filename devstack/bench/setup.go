package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/setera/onesync/pbx"
)

// connectParallel is how many onboardings run at once during set-up: enough
// to keep both cores busy, few enough that none of them times out.
const connectParallel = 8

// connectTimeout bounds one tenant's onboarding, and syncTimeout the wait
// until every extension shows its first state.
const (
	connectTimeout = 3 * time.Minute
	syncTimeout    = 10 * time.Minute
)

// setUp creates the tenants and organisations, connects them and waits
// until every linked extension has received its first line state.
func (r *runner) setUp(ctx context.Context) error {
	start := time.Now()
	c := r.cfg
	for i := range c.Tenants {
		if err := r.addTenant(int64(i+1), c.Users, false); err != nil {
			return err
		}
	}
	if c.BigUsers > 0 {
		if err := r.addTenant(int64(c.Tenants+1), c.BigUsers, true); err != nil {
			return err
		}
	}
	progress(c.Progress, "created %d tenants with %d users; connecting them", len(r.tenants),
		len(r.users))

	if err := r.connectAll(ctx); err != nil {
		return err
	}
	progress(c.Progress, "every tenant connected in %s; waiting for the first states",
		time.Since(start).Round(time.Second))
	if err := r.waitFirstStates(ctx); err != nil {
		return err
	}
	r.setupTime = time.Since(start)
	return nil
}

// addTenant creates a Graph tenant of n enabled, licensed members and a
// OneCloud organisation with one extension per member, matched by
// address, and sets every member available so that the changes start from
// a known state.
func (r *runner) addTenant(seed int64, n int, big bool) error {
	g := r.s.Graph
	info, err := g.AddMemberTenant(r.cfg.Seed*100003+seed, n)
	if err != nil {
		return fmt.Errorf("create tenant %d: %w", seed, err)
	}
	users, err := g.Users(info.ID)
	if err != nil {
		return fmt.Errorf("read users of tenant %s: %w", info.ID, err)
	}

	t := &benchTenant{id: info.ID, orgID: "org-bench-" + strconv.FormatInt(seed, 10),
		pbxOrg: "bench-" + strconv.FormatInt(seed, 10), users: len(users), big: big}
	r.s.OneCloud.AddOrg(t.pbxOrg, info.Name)
	exts := make([]pbx.Extension, 0, len(users))
	for i, u := range users {
		email := u.Mail
		if email == "" {
			email = u.UPN
		}
		number := strconv.Itoa(10000 + i)
		exts = append(exts, pbx.Extension{Number: number, Email: email, Name: u.DisplayName})
		if _, err := g.SetPresence(info.ID, u.ID, free.availability, free.activity); err != nil {
			return fmt.Errorf("set presence of %s: %w", u.ID, err)
		}
		r.users = append(r.users, &benchUser{tenant: t, id: u.ID, ext: number})
	}
	if err := r.s.OneCloud.SetExtensions(t.pbxOrg, exts); err != nil {
		return fmt.Errorf("extensions of %s: %w", t.pbxOrg, err)
	}
	r.tenants = append(r.tenants, t)
	return nil
}

// connectAll onboards every tenant, connectParallel at a time, and checks
// that each linked every one of its users.
func (r *runner) connectAll(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sem := make(chan struct{}, connectParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, t := range r.tenants {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, ccancel := context.WithTimeout(ctx, connectTimeout)
			res, err := r.s.Connect(cctx, t.orgID, "Bench "+t.pbxOrg, t.id, t.pbxOrg)
			ccancel()
			if err == nil && res.Activated != t.users {
				err = fmt.Errorf("tenant %s linked %d of %d users (%d ambiguous, %d unmatched)",
					t.id, res.Activated, t.users, res.Ambiguous, res.TeamsWithoutExt)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// waitFirstStates waits until every extension holds the available state
// of its first push, so that the measured period sees only the changes.
func (r *runner) waitFirstStates(ctx context.Context) error {
	deadline := time.Now().Add(syncTimeout)
	for {
		waiting := 0
		for _, u := range r.users {
			if st, _ := r.s.OneCloud.LineState(u.tenant.pbxOrg, u.ext); st != freeState {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d of %d extensions still have no first state",
				syncTimeout, waiting, len(r.users))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
