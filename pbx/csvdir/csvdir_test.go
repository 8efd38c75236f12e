package csvdir_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/setera/onesync/pbx"
	"github.com/setera/onesync/pbx/csvdir"
	"github.com/setera/onesync/pbx/sip"
)

func TestParseGoodFiles(t *testing.T) {
	want := []pbx.Extension{
		{Number: "201", Email: "anna@contoso.example"},
		{Number: "202", Email: "bob.smith@contoso.example"},
	}
	for name, file := range map[string]string{
		"no header":  "anna@contoso.example,201\nbob.smith@contoso.example,202\n",
		"header":     "email,extension\nAnna@Contoso.example,201\r\nbob.smith@contoso.example,202\r\n",
		"bom header": "\uFEFFUPN;Extension\nanna@contoso.example;201\nbob.smith@contoso.example;202",
		"swapped": "Extension,User Principal Name\n" +
			"201,anna@contoso.example\n202,bob.smith@contoso.example\n",
		"blank lines": "\nanna@contoso.example , 201\n\n bob.smith@contoso.example,202\n\n",
		"quoted":      "\"anna@contoso.example\",\"201\"\n\"bob.smith@contoso.example\",202\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := csvdir.Parse(strings.NewReader(file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse = %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseNameColumn(t *testing.T) {
	got, err := csvdir.Parse(strings.NewReader(
		"Display Name,Mail,Ext\nAnna Berg,anna@contoso.example,201\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []pbx.Extension{{Number: "201", Email: "anna@contoso.example", Name: "Anna Berg"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
}

// Every bad row is reported with its line, and the good rows are kept.
func TestParseBadRows(t *testing.T) {
	file := strings.Join([]string{
		"email,extension",              // 1
		"anna@contoso.example,201",     // 2 good
		"not-an-email,202",             // 3
		"carl@contoso.example,",        // 4
		"dora@contoso.example,20 3",    // 5
		"ANNA@contoso.example,204",     // 6 duplicate email
		"erik@contoso.example,201",     // 7 duplicate extension
		",205",                         // 8
		"fay@contoso.example,206",      // 9 good
		"gus@contoso,207",              // 10 no dotted domain
		"hal@contoso.example",          // 11 no extension column
		"ivy@contoso.example,208;ext9", // 12 bad extension
	}, "\n")
	got, err := csvdir.Parse(strings.NewReader(file))

	want := []pbx.Extension{
		{Number: "201", Email: "anna@contoso.example"},
		{Number: "206", Email: "fay@contoso.example"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("good rows = %+v, want %+v", got, want)
	}
	var perr *csvdir.Error
	if !errors.As(err, &perr) {
		t.Fatalf("Parse error = %v, want *csvdir.Error", err)
	}
	wantLines := map[int]string{
		3:  "not an email",
		4:  "extension is missing",
		5:  "may hold only",
		6:  "already on line 2",
		7:  "extension 201 is already on line 2",
		8:  "email or UPN is missing",
		10: "not an email",
		11: "extension is missing",
		12: "may hold only",
	}
	if len(perr.Rows) != len(wantLines) {
		t.Errorf("%d row errors, want %d: %v", len(perr.Rows), len(wantLines), perr.Rows)
	}
	for _, r := range perr.Rows {
		frag, ok := wantLines[r.Line]
		if !ok {
			t.Errorf("unexpected error on line %d: %s", r.Line, r.Message)
			continue
		}
		if !strings.Contains(r.Message, frag) {
			t.Errorf("line %d: %q does not say %q", r.Line, r.Message, frag)
		}
	}
	if !strings.Contains(err.Error(), "9 bad row(s)") || !strings.Contains(err.Error(), "line 3:") {
		t.Errorf("summary %q", err.Error())
	}
}

func TestParseBrokenFiles(t *testing.T) {
	t.Run("header without extension column", func(t *testing.T) {
		_, err := csvdir.Parse(strings.NewReader("email,phone\nanna@contoso.example,201\n"))
		var perr *csvdir.Error
		if !errors.As(err, &perr) || perr.Rows[0].Line != 1 {
			t.Fatalf("Parse error = %v, want a line 1 error", err)
		}
	})
	t.Run("bad quoting", func(t *testing.T) {
		got, err := csvdir.Parse(strings.NewReader(
			"anna@contoso.example,201\nbob@contoso.example,\"202\n"))
		var perr *csvdir.Error
		if !errors.As(err, &perr) || perr.Rows[0].Line != 2 ||
			!strings.Contains(perr.Rows[0].Message, "not valid CSV") {
			t.Fatalf("Parse error = %v, want a line 2 CSV error", err)
		}
		if len(got) != 1 {
			t.Errorf("kept %d rows before the broken line, want 1", len(got))
		}
	})
	t.Run("too large", func(t *testing.T) {
		big := strings.Repeat("a", csvdir.MaxBytes+1)
		if _, err := csvdir.Parse(strings.NewReader(big)); err == nil ||
			!strings.Contains(err.Error(), "larger than") {
			t.Fatalf("Parse error = %v, want too large", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		got, err := csvdir.Parse(strings.NewReader("\uFEFF"))
		if err != nil || len(got) != 0 {
			t.Fatalf("Parse = %v, %v; want no rows, no error", got, err)
		}
	})
}

// The directory accepts exactly the extensions the SIP publisher can
// publish.
func TestExtensionRuleMatchesPublisher(t *testing.T) {
	for _, ext := range []string{"201", "0", "a.b", "9*1", "x+y", "-1", ".1", "", "20 1",
		"201#", "ä1", strings.Repeat("1", 64), strings.Repeat("1", 65), "1;x"} {
		if csvdir.ValidExtension(ext) != sip.ValidExtension(ext) {
			t.Errorf("%q: csvdir says %t, sip says %t", ext, csvdir.ValidExtension(ext),
				sip.ValidExtension(ext))
		}
	}
}
