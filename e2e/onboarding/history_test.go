package onboarding

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/setera/onesync/workflows"
)

// recordEnv asks the journey to write the histories it produced to
// workflows/testdata for the replay test.
const recordEnv = "ONESYNC_RECORD_HISTORIES"

// testdataDir is workflows/testdata seen from this package's folder, where
// `go test` runs it.
var testdataDir = filepath.Join("..", "..", "workflows", "testdata")

// history reads the whole recorded history of a workflow run.
func history(t testing.TB, c client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false,
		enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("read the history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	if len(h.Events) == 0 {
		t.Fatalf("the history of %s is empty", workflowID)
	}
	return h
}

// stages lists the OneSyncStage values the workflow upserted, in order.
func stages(t testing.TB, h *historypb.History) []string {
	t.Helper()
	var out []string
	for _, ev := range h.Events {
		a := ev.GetUpsertWorkflowSearchAttributesEventAttributes()
		if a == nil {
			continue
		}
		p, ok := a.GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrStage]
		if !ok {
			continue
		}
		var v string
		if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
			t.Fatalf("decode the stage of event %d: %v", ev.GetEventId(), err)
		}
		out = append(out, v)
	}
	return out
}

// completedActivities lists the activity types that completed, in order.
func completedActivities(h *historypb.History) []string {
	scheduled := map[int64]string{}
	var out []string
	for _, ev := range h.Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			out = append(out, scheduled[a.GetScheduledEventId()])
		}
	}
	return out
}

// childStarted returns the workflow id of the first child of type wfType
// that the history shows started, or "".
func childStarted(h *historypb.History, wfType string) string {
	for _, ev := range h.Events {
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil &&
			a.GetWorkflowType().GetName() == wfType {
			return a.GetWorkflowExecution().GetWorkflowId()
		}
	}
	return ""
}

// secretsIn returns each secret found in the history: in its JSON form
// (every string field: failures, identities, headers) and in the decoded
// bytes of every payload (inputs, results, signals, memos, search
// attributes, side effects), which the JSON form only shows as base64.
func secretsIn(t testing.TB, h *historypb.History, secrets map[string]string) []string {
	t.Helper()
	text, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(h)
	if err != nil {
		t.Fatalf("marshal history: %v", err)
	}
	var blobs [][]byte
	blobs = append(blobs, text)
	payloads := 0
	eachPayload(h.ProtoReflect(), func(p *commonpb.Payload) {
		payloads++
		blobs = append(blobs, p.GetData())
		for _, v := range p.GetMetadata() {
			blobs = append(blobs, v)
		}
	})
	if payloads == 0 {
		t.Fatal("the history holds no payload: the scan would prove nothing")
	}

	var found []string
	for what, secret := range secrets {
		if secret == "" {
			t.Fatalf("no value to look for as %s", what)
		}
		for _, b := range blobs {
			if bytes.Contains(b, []byte(secret)) {
				found = append(found, what)
				break
			}
		}
	}
	return found
}

// eachPayload calls fn for every Payload message anywhere below m.
func eachPayload(m protoreflect.Message, fn func(*commonpb.Payload)) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		fn(p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := range l.Len() {
				eachPayload(l.Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				eachPayload(mv.Message(), fn)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			eachPayload(v.Message(), fn)
		}
		return true
	})
}

// recordHistory writes h to workflows/testdata/name.json when
// ONESYNC_RECORD_HISTORIES=1, after checking it holds none of secrets:
// the files are committed.
func recordHistory(t testing.TB, name string, h *historypb.History, secrets map[string]string) {
	t.Helper()
	if os.Getenv(recordEnv) != "1" {
		return
	}
	if found := secretsIn(t, h, secrets); len(found) > 0 {
		t.Fatalf("not recording %s: its history holds %v", name, found)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatalf("marshal the history of %s: %v", name, err)
	}
	path := filepath.Join(testdataDir, name+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatalf("record history: %v", err)
	}
	t.Logf("recorded %d events in %s", len(h.Events), path)
}

func describeEvents(h *historypb.History) string {
	var b bytes.Buffer
	for _, ev := range h.Events {
		fmt.Fprintf(&b, "%d %s\n", ev.GetEventId(), ev.GetEventType())
	}
	return b.String()
}
