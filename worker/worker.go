// Package worker builds the Temporal worker that runs OneSync's workflows
// and activities on task queue workflows.TaskQueue. `onesync dev` and
// `onesync worker` share it, so that both run exactly the same set of
// registrations. It starts nothing by itself: the caller runs the worker.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/setera/onesync/activities"
	"github.com/setera/onesync/workflows"
)

// Options configure New. The zero value is usable.
type Options struct {
	// Logger receives the worker's own lines; nil discards them. The SDK's
	// lines go to the logger of the client passed to New.
	Logger *zap.Logger

	// TaskQueue overrides workflows.TaskQueue; only tests and benchmarks
	// that must not meet another worker set it.
	TaskQueue string

	// Register adds registrations after OneSync's own, for tests and
	// benchmarks that run their own workflows on the same worker.
	Register func(sdkworker.Registry)

	// MaxConcurrentActivities bounds the activities this worker runs at
	// once; 0 keeps the SDK's default.
	MaxConcurrentActivities int

	// StopTimeout is how long Stop waits for running activities to finish
	// before it cancels them; 0 keeps the SDK's default.
	StopTimeout time.Duration

	// OnFatalError is called once if the worker stops by itself on an
	// error it cannot recover from (for example a namespace that is gone),
	// so that the process can end instead of idling.
	OnFatalError func(error)

	// Activities is the value whose exported methods are OneSync's
	// activities. nil registers none: the workflows then wait at their
	// first activity until a worker that has them picks it up. The
	// process wiring (cmd/onesync) builds it with its store, Graph client
	// and PBX connector.
	Activities *activities.Activities

	// SyncInterval and SyncWindow pace the presence syncs this process
	// runs when their input leaves the pace open; zero keeps the
	// workflow's defaults (workflows.DefaultSyncInterval and
	// DefaultSyncWindow).
	SyncInterval time.Duration
	SyncWindow   time.Duration
}

// heartbeatThrottle bounds how long a heartbeat waits to be sent, and so
// how long a signal takes to stop a running polling window.
const heartbeatThrottle = 2 * time.Second

// New returns a worker for c on the task queue, with every OneSync workflow
// and activity registered. The caller starts it with Start or Run.
func New(c client.Client, opts Options) sdkworker.Worker {
	queue := opts.TaskQueue
	if queue == "" {
		queue = workflows.TaskQueue
	}

	w := sdkworker.New(c, queue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: opts.MaxConcurrentActivities,
		WorkerStopTimeout:                  opts.StopTimeout,
		// A panic in workflow code is a bug: fail the task and keep
		// retrying it, so that a fixed deploy resumes the workflow.
		WorkflowPanicPolicy: sdkworker.BlockWorkflow,
		// A polling window learns that its workflow cancelled it (pause,
		// disconnect, config-changed) only from a heartbeat's answer, and
		// the SDK would otherwise hold heartbeats back for up to 80 % of
		// the 30 s heartbeat timeout. Heartbeats add no history events.
		MaxHeartbeatThrottleInterval: heartbeatThrottle,
		OnFatalError:                 opts.OnFatalError,
	})

	workflows.SetDeploymentPace(opts.SyncInterval, opts.SyncWindow)
	register(w, opts)
	if opts.Register != nil {
		opts.Register(w)
	}

	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	logger.Debug("temporal worker built", zap.String("taskQueue", queue))
	return w
}

// register adds OneSync's workflows, under the type names of
// workflows/contract.go, and its activities to r.
func register(r sdkworker.Registry, opts Options) {
	r.RegisterWorkflowWithOptions(workflows.Onboarding,
		workflow.RegisterOptions{Name: workflows.OnboardingWorkflow})
	r.RegisterWorkflowWithOptions(workflows.PresenceSync,
		workflow.RegisterOptions{Name: workflows.PresenceSyncWorkflow})

	if opts.Activities != nil {
		r.RegisterActivity(opts.Activities)
	}
}
