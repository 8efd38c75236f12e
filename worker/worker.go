// Package worker builds the Temporal worker that runs OneSync's workflows
// and activities on task queue workflows.TaskQueue. `onesync dev` and
// `onesync worker` share it, so that both run exactly the same set of
// registrations. It starts nothing by itself: the caller runs the worker.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"

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

	// Placeholder until the activities package exists: the integrator adds
	// the activities' dependencies here (for example
	// `Activities *activities.Activities`) and registers them in register.
}

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
	})

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

// register adds OneSync's workflows and activities to r.
//
// Placeholder: the Onboarding and PresenceSync workflows and the activities
// are written in packages workflows and activities, which do not register
// anything yet. The integrator adds here, by name so that the workflow type
// names stay those of workflows/contract.go:
//
//	r.RegisterWorkflowWithOptions(workflows.Onboarding,
//		workflow.RegisterOptions{Name: workflows.OnboardingWorkflow})
//	r.RegisterWorkflowWithOptions(workflows.PresenceSync,
//		workflow.RegisterOptions{Name: workflows.PresenceSyncWorkflow})
//	r.RegisterActivity(opts.Activities)
//
// Until then a worker built here polls the task queue and runs nothing.
func register(r sdkworker.Registry, opts Options) {
	_ = r
	_ = opts
}
