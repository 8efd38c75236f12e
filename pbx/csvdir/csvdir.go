// Package csvdir reads the extension directory an admin uploads for a SIP
// deployment: SIP presence servers list no extensions, so the admin gives
// OneSync a CSV of (email or UPN, extension) rows instead.
//
// The file may start with a header row and a UTF-8 byte order mark (as
// Excel writes them), may use ";" instead of "," (Excel in many European
// locales), and may carry a third column with the user's name. Parse checks
// every row and reports every problem with its line number, so that the
// admin fixes the file in one go. It performs no I/O beyond reading the
// given reader.
package csvdir

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/setera/onesync/pbx"
)

// Limits of an upload: generous for one organisation, small enough to
// parse in a request.
const (
	MaxBytes = 5 << 20
	MaxRows  = 50000
)

// RowError is one problem of one line of the file.
type RowError struct {
	Line    int    // 1-based line of the file
	Message string // what is wrong, for the admin
}

// Error formats the problem with its line.
func (e RowError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Message)
}

// Error lists every bad row of a file. Parse returns it beside the rows
// that were good, so that a page can show both.
type Error struct {
	Rows []RowError
}

// Error summarises the first problems.
func (e *Error) Error() string {
	const shown = 3
	parts := make([]string, 0, shown)
	for i, r := range e.Rows {
		if i == shown {
			break
		}
		parts = append(parts, r.Error())
	}
	msg := fmt.Sprintf("%d bad row(s) in the extension file: %s", len(e.Rows),
		strings.Join(parts, "; "))
	if len(e.Rows) > shown {
		msg += "; …"
	}
	return msg
}

// Parse reads a directory CSV and returns its extensions in file order,
// emails lower-cased. When some rows are bad it returns the good ones and
// an *Error listing every bad row (bad email or UPN, bad extension, missing
// column, duplicate email, duplicate extension). Any other error (too
// large, not CSV, unreadable) returns no rows.
func Parse(r io.Reader) ([]pbx.Extension, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read extension file: %w", err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("extension file is larger than %d MB", MaxBytes>>20)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))

	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = separator(data)
	cr.FieldsPerRecord = -1 // rows are checked one by one below
	cr.TrimLeadingSpace = true

	p := parser{
		emails: make(map[string]int),
		exts:   make(map[string]int),
		cols:   columns{email: 0, ext: 1, name: 2},
	}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				p.fail(pe.Line, "not valid CSV: "+pe.Err.Error())
				return p.result()
			}
			return nil, fmt.Errorf("read extension file: %w", err)
		}
		line, _ := cr.FieldPos(0)

		if first {
			if cols, ok, msg := header(rec); ok {
				if msg != "" {
					p.fail(line, msg)
					return p.result()
				}
				p.cols = cols
				continue
			}
		}
		if len(p.out)+len(p.errs) >= MaxRows {
			return nil, fmt.Errorf("extension file has more than %d rows", MaxRows)
		}
		p.row(line, rec)
	}
	return p.result()
}

// parser collects the good rows and the problems of one file.
type parser struct {
	cols   columns
	out    []pbx.Extension
	errs   []RowError
	emails map[string]int // lower-cased email → line
	exts   map[string]int // extension → line
}

// columns are the 0-based positions of the fields; name is -1 when absent.
type columns struct {
	email, ext, name int
}

func (p *parser) fail(line int, msg string) {
	p.errs = append(p.errs, RowError{Line: line, Message: msg})
}

func (p *parser) result() ([]pbx.Extension, error) {
	if len(p.errs) > 0 {
		return p.out, &Error{Rows: p.errs}
	}
	return p.out, nil
}

// row checks one record and keeps it when it is good.
func (p *parser) row(line int, rec []string) {
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	email, ext, name := strings.ToLower(field(p.cols.email)), field(p.cols.ext), field(p.cols.name)

	bad := false
	switch {
	case email == "":
		p.fail(line, "the email or UPN is missing")
		bad = true
	case !validEmail(email):
		p.fail(line, fmt.Sprintf("%q is not an email address or UPN", email))
		bad = true
	}
	switch {
	case ext == "":
		p.fail(line, "the extension is missing")
		bad = true
	case !ValidExtension(ext):
		p.fail(line, fmt.Sprintf("extension %q may hold only letters, digits and . _ + - *, "+
			"up to 64", ext))
		bad = true
	}
	if len(name) > 256 {
		p.fail(line, "the name is longer than 256 characters")
		bad = true
	}
	if bad {
		return
	}

	if at, dup := p.emails[email]; dup {
		p.fail(line, fmt.Sprintf("%s is already on line %d", email, at))
		bad = true
	}
	if at, dup := p.exts[ext]; dup {
		p.fail(line, fmt.Sprintf("extension %s is already on line %d", ext, at))
		bad = true
	}
	if bad {
		return
	}
	p.emails[email], p.exts[ext] = line, line
	p.out = append(p.out, pbx.Extension{Number: ext, Email: email, Name: name})
}

// Header names accepted for each column, compared lower-cased without
// spaces, dashes and underscores.
var (
	emailHeaders = map[string]bool{"email": true, "mail": true, "emailaddress": true,
		"upn": true, "userprincipalname": true, "user": true, "login": true}
	extHeaders = map[string]bool{"extension": true, "ext": true, "number": true,
		"extensionnumber": true, "line": true}
	nameHeaders = map[string]bool{"name": true, "displayname": true, "fullname": true}
)

// header reports whether rec is a header row, the columns it names, and a
// problem when it is one but lacks a needed column. A row is a header when
// none of its fields holds an "@" and one of them names a known column.
func header(rec []string) (columns, bool, string) {
	cols := columns{email: -1, ext: -1, name: -1}
	known := false
	for i, f := range rec {
		if strings.Contains(f, "@") {
			return columns{}, false, ""
		}
		key := strings.NewReplacer(" ", "", "-", "", "_", "").Replace(
			strings.ToLower(strings.TrimSpace(f)))
		switch {
		case emailHeaders[key] && cols.email < 0:
			cols.email, known = i, true
		case extHeaders[key] && cols.ext < 0:
			cols.ext, known = i, true
		case nameHeaders[key] && cols.name < 0:
			cols.name, known = i, true
		}
	}
	if !known {
		return columns{}, false, ""
	}
	if cols.email < 0 || cols.ext < 0 {
		return cols, true, "the header row needs an email (or UPN) column and an extension column"
	}
	return cols, true, ""
}

// separator is ";" when the first line has semicolons and no commas, else
// ",".
func separator(data []byte) rune {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxBytes)
	if sc.Scan() {
		first := sc.Text()
		if strings.Contains(first, ";") && !strings.Contains(first, ",") {
			return ';'
		}
	}
	return ','
}

// emailRE accepts the shape of an email address or a UPN: a local part
// without spaces or a second "@", and a dotted domain.
var emailRE = regexp.MustCompile(
	`^[a-z0-9.!#$%&'*+/=?^_{|}~-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

func validEmail(s string) bool {
	return len(s) <= 254 && emailRE.MatchString(s)
}

// extensionRE is the extension rule of the SIP publisher (sip.ValidExtension):
// the extension becomes the user part of a SIP URI without escaping.
var extensionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+*-]{0,63}$`)

// ValidExtension reports whether ext can be an extension of a SIP
// deployment.
func ValidExtension(ext string) bool {
	return extensionRE.MatchString(ext)
}
