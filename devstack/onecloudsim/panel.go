package onecloudsim

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"time"
)

// event is one message on a panel's server-sent event stream: "lamp" with
// one extension's state, or "extensions" when the list changed.
type event struct {
	Name string
	Lamp lamp
}

// lamp is what the panel shows for one extension.
type lamp struct {
	Extension string    `json:"extension"`
	Name      string    `json:"name,omitempty"`
	State     string    `json:"state"`
	ChangedAt time.Time `json:"changedAt,omitzero"`
}

// lampEvent describes x for the panel; s.mu must be held.
func lampEvent(x *extension) event {
	return event{Name: "lamp", Lamp: lampOf(x)}
}

func lampOf(x *extension) lamp {
	st := string(x.state)
	if st == "" {
		st = "unknown"
	}
	return lamp{Extension: x.Number, Name: x.Name, State: st, ChangedAt: x.changedAt}
}

// subscriberBuffer is how many events a slow panel may fall behind before
// its stream is cut; the browser then reconnects and gets a fresh snapshot.
const subscriberBuffer = 256

func (s *Sim) subscribe(orgID string) chan event {
	ch := make(chan event, subscriberBuffer)
	s.mu.Lock()
	if s.subs[orgID] == nil {
		s.subs[orgID] = map[chan event]struct{}{}
	}
	s.subs[orgID][ch] = struct{}{}
	s.mu.Unlock()
	return ch
}

func (s *Sim) unsubscribe(orgID string, ch chan event) {
	s.mu.Lock()
	if _, ok := s.subs[orgID][ch]; ok {
		delete(s.subs[orgID], ch)
		close(ch)
	}
	s.mu.Unlock()
}

// broadcast sends ev to every panel of the organisation without waiting:
// a panel whose buffer is full is dropped.
func (s *Sim) broadcast(orgID string, ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs[orgID] {
		select {
		case ch <- ev:
		default:
			delete(s.subs[orgID], ch)
			close(ch)
		}
	}
}

// panelEvents streams an organisation's lamp changes as server-sent events.
// It starts with the current state of every lamp, so a change that happens
// between loading the page and opening the stream is not lost.
func (s *Sim) panelEvents(w http.ResponseWriter, r *http.Request) {
	orgID := r.PathValue("org")
	ch := s.subscribe(orgID)
	defer s.unsubscribe(orgID, ch)

	lamps, _, ok := s.snapshot(orgID)
	if !ok {
		http.Error(w, "no such organisation", http.StatusNotFound)
		return
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	for _, l := range lamps {
		if err := writeEvent(w, event{Name: "lamp", Lamp: l}); err != nil {
			return
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}

	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
		case ev, open := <-ch:
			if !open {
				return // fell too far behind; the browser reconnects
			}
			if err := writeEvent(w, ev); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, ev event) error {
	data := []byte("{}")
	if ev.Name == "lamp" {
		var err error
		if data, err = json.Marshal(ev.Lamp); err != nil {
			return fmt.Errorf("encode lamp: %w", err)
		}
	}
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Name, data)
	return err
}

// snapshot returns the lamps of an organisation in extension order.
func (s *Sim) snapshot(orgID string) ([]lamp, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[orgID]
	if o == nil {
		return nil, "", false
	}
	lamps := make([]lamp, 0, len(o.order))
	for _, n := range o.order {
		lamps = append(lamps, lampOf(o.exts[n]))
	}
	return lamps, o.name, true
}

func (s *Sim) panelIndex(w http.ResponseWriter, r *http.Request) {
	type entry struct{ ID, Name string }
	s.mu.Lock()
	list := make([]entry, 0, len(s.orgs))
	for _, o := range s.orgs {
		list = append(list, entry{o.id, o.name})
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexPage.Execute(w, list); err != nil {
		s.log.Debug("render panel index: " + err.Error())
	}
}

func (s *Sim) panelPage(w http.ResponseWriter, r *http.Request) {
	orgID := r.PathValue("org")
	lamps, name, ok := s.snapshot(orgID)
	if !ok {
		http.Error(w, "no such organisation", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	data := struct {
		Org, Name string
		Lamps     []lamp
	}{orgID, name, lamps}
	if err := panelTmpl.Execute(w, data); err != nil {
		s.log.Debug("render panel: " + err.Error())
	}
}

var funcs = template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("15:04:05")
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	},
	"label": func(state string) string {
		return stateLabels[state]
	},
}

// stateLabels are the words a lamp shows beside its colour.
var stateLabels = map[string]string{
	"busy": "Busy", "dnd": "Do not disturb", "away": "Away", "available": "Available",
	"offline": "Offline", "unknown": "No state yet",
}

const style = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d232b; background: #f5f6f8; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
p.note { margin: 0 0 1.5rem; color: #555; }
ul.lamps { list-style: none; padding: 0; display: grid; gap: .6rem;
  grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); }
li.lamp { display: grid; grid-template-columns: 1.4rem 1fr auto; align-items: center;
  gap: .2rem .6rem; background: #fff; border: 1px solid #d7dbe0; border-radius: 6px;
  padding: .6rem .8rem; }
.dot { width: 1rem; height: 1rem; border-radius: 50%; background: #b9bec6;
  grid-row: span 2; box-shadow: inset 0 0 0 1px rgba(0,0,0,.15); }
.number { font-weight: 600; }
.state, time { font-size: .85rem; color: #555; }
.name { grid-column: 2 / 4; font-size: .9rem; }
li[data-state="busy"] .dot { background: #d62d20; }
li[data-state="dnd"] .dot { background: #8e1b12; box-shadow: inset 0 0 0 3px #f3b2ad; }
li[data-state="away"] .dot { background: #f0a30a; }
li[data-state="available"] .dot { background: #2e9e44; }
li[data-state="offline"] .dot { background: #fff; box-shadow: inset 0 0 0 2px #8a9099; }
#live { font-size: .85rem; }
#live[data-live="true"]::before { content: "● "; color: #2e9e44; }
#live[data-live="false"]::before { content: "● "; color: #d62d20; }
`

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OneCloud simulator</title>
<style>` + style + `</style></head><body>
<h1>OneCloud simulator: busy-lamp panels</h1>
<ul>{{range .}}<li><a href="/panel/{{.ID}}">{{.Name}} ({{.ID}})</a></li>
{{else}}<li>No organisations yet.</li>{{end}}</ul>
</body></html>
`))

var panelTmpl = template.Must(template.New("panel").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Name}}: busy-lamp panel</title>
<style>` + style + `</style></head>
<body data-org="{{.Org}}" data-events="/panel/{{.Org}}/events">
<h1>{{.Name}}</h1>
<p class="note">Busy-lamp panel of organisation <code>{{.Org}}</code> in the OneCloud
simulator. <span id="live" data-live="false">connecting</span></p>
<ul class="lamps" id="lamps">
{{range .Lamps}}<li class="lamp" data-extension="{{.Extension}}" data-state="{{.State}}"
 data-changed-at="{{iso .ChangedAt}}">
<span class="dot" aria-hidden="true"></span>
<span class="number">{{.Extension}}</span>
<time datetime="{{iso .ChangedAt}}">{{clock .ChangedAt}}</time>
<span class="name">{{.Name}} · <span class="state">{{label .State}}</span></span>
</li>
{{else}}<li>This organisation has no extensions.</li>{{end}}
</ul>
<script>
(function () {
  var labels = {busy: "Busy", dnd: "Do not disturb", away: "Away",
    available: "Available", offline: "Offline", unknown: "No state yet"};
  var live = document.getElementById("live");
  var source = new EventSource(document.body.dataset.events);
  source.onopen = function () { live.dataset.live = "true"; live.textContent = "live"; };
  source.onerror = function () {
    live.dataset.live = "false"; live.textContent = "reconnecting";
  };
  source.addEventListener("lamp", function (e) {
    var d = JSON.parse(e.data);
    var items = document.querySelectorAll("li.lamp");
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      if (el.dataset.extension !== d.extension) { continue; }
      el.dataset.state = d.state;
      el.dataset.changedAt = d.changedAt || "";
      el.querySelector(".state").textContent = labels[d.state] || d.state;
      var t = el.querySelector("time");
      t.setAttribute("datetime", d.changedAt || "");
      t.textContent = d.changedAt ? new Date(d.changedAt).toLocaleTimeString() : "—";
    }
  });
  source.addEventListener("extensions", function () { location.reload(); });
})();
</script>
</body></html>
`))
