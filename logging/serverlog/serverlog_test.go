package serverlog_test

import (
	"fmt"
	"testing"

	"go.temporal.io/server/common/log/tag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/setera/onesync/logging/serverlog"
)

func TestServerTagsBecomeFields(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := serverlog.New(zap.New(core))

	l.With(tag.WorkflowNamespace("default")).Warn("shard moved", tag.ShardID(1))
	l.Debug("below the level")

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d entries, want 1 (debug must be filtered)", len(entries))
	}
	e := entries[0]
	if e.LoggerName != "temporal" || e.Message != "shard moved" {
		t.Fatalf("entry %q from %q, want \"shard moved\" from temporal", e.Message, e.LoggerName)
	}
	fields := e.ContextMap()
	if fields["wf-namespace"] != "default" || fmt.Sprint(fields["shard-id"]) != "1" {
		t.Fatalf("fields %v, want wf-namespace=default and shard-id=1", fields)
	}
}

// The warnings `onesync dev` gives in normal use go to debug level; any
// other warning stays a warning.
func TestExpectedWarningsAreDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := serverlog.New(zap.New(core))
	l.Warn("HTTP API port has not been set. Nexus HTTP endpoints will not be available.")
	l.Warn("GetHistory page size is larger than threshold")
	l.Warn("shard is lagging")

	got := logs.All()
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3", len(got))
	}
	for i, want := range []zapcore.Level{zapcore.DebugLevel, zapcore.DebugLevel, zapcore.WarnLevel} {
		if got[i].Level != want {
			t.Errorf("%q logged at %s, want %s", got[i].Message, got[i].Level, want)
		}
	}
}
