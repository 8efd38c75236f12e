// Package presencee2e holds the presence sync's integration tests: the
// whole product (embedded Temporal server, worker, store, real Graph
// client and REST connector) against the Graph and OneCloud simulators,
// started per test by devstacktest.
//
// The tests prove, on the real server rather than the SDK's test suite,
// what an operator would check:
//
//   - a Teams call, meeting, out-of-office and availability change reaches
//     the OneCloud lamp within the polling interval plus one second,
//     measured from the Graph simulator's change time to the OneCloud
//     simulator's receipt time;
//   - deleting the enterprise app ends the tenant's sync within one window,
//     frees every line, marks the tenant revoked and leaves the token
//     endpoint alone afterwards (C7);
//   - a worker stopped in the middle of a window and started again pushes
//     no state twice and leaves no lamp wrong (C12);
//   - the workflow's recorded history grows by a small constant per window
//     and each run continues as new far below Temporal's limits (C11);
//   - pause, resume and resync-users sent across the continue-as-new
//     boundary are none of them lost (C10);
//   - a throttled tenant waits out its Retry-After while another tenant
//     keeps its pace (C2), and 1,400 users are read in three presence
//     requests per poll (C1).
//
// The package has no non-test code; this file only documents it.
package presencee2e
