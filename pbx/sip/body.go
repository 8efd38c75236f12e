package sip

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"

	"github.com/setera/onesync/presence"
)

// The SIP event packages and body types this publisher speaks.
const (
	eventDialog   = "dialog"
	eventPresence = "presence"

	contentTypeDialogInfo = "application/dialog-info+xml"
	contentTypePIDF       = "application/pidf+xml"
)

// Dialog states of RFC 4235 that a line state maps to.
const (
	dialogConfirmed  = "confirmed"
	dialogTerminated = "terminated"
)

// dialogState maps a line state to the RFC 4235 dialog state a busy lamp
// lights from. Busy is "confirmed", as for a call in progress. Do not
// disturb is "confirmed" too: a phone in DND rejects calls, and a red lamp
// is what stops a colleague from transferring a caller into that wall. Away,
// available and offline are "terminated": the line takes calls (or goes to
// voicemail the PBX way), so no lamp may stay red for them.
func dialogState(s presence.LineState) string {
	switch s {
	case presence.Busy, presence.DoNotDisturb:
		return dialogConfirmed
	}
	return dialogTerminated
}

// dialogID is the id of the dialog element for a line's period-th busy
// period. A busy period is one dialog: confirmed while it lasts, terminated
// when it ends; the next busy period is a new dialog with a new id, as a
// terminated dialog never comes back (RFC 4235, and Kamailio refuses to
// change a publication once its dialog is terminated).
func dialogID(period uint64) string {
	return "onesync-" + strconv.FormatUint(period, 10)
}

// dialogInfoBody builds the RFC 4235 dialog-info document for entity (a SIP
// URI) at the given version: one dialog, id, in state confirmed while the
// line is busy, terminated when it is free.
func dialogInfoBody(entity string, version uint64, id string, s presence.LineState) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="`)
	b.WriteString(strconv.FormatUint(version, 10))
	b.WriteString(`" state="full" entity="`)
	writeEscaped(&b, entity)
	b.WriteString("\">\n")
	b.WriteString(`  <dialog id="`)
	writeEscaped(&b, id)
	b.WriteString("\">\n")
	b.WriteString("    <state>" + dialogState(s) + "</state>\n")
	b.WriteString("  </dialog>\n")
	b.WriteString("</dialog-info>\n")
	return b.Bytes()
}

// activity is the RPID (RFC 4480) activity shown for a line state and the
// reason OneSync gives for it; "" means no activity element.
//
// The reason is the free text of presence.Outcome, so the finer activities
// are found by keyword: a reason that speaks of a call or a phone gives
// on-the-phone, one that speaks of a meeting, a conference or presenting
// gives meeting, any other busy reason gives busy. Do not disturb has no
// RPID activity of its own and shows as busy, as phones render it.
func activity(s presence.LineState, reason string) string {
	switch s {
	case presence.Busy:
		r := strings.ToLower(reason)
		switch {
		case strings.Contains(r, "call"), strings.Contains(r, "phone"):
			return "on-the-phone"
		case strings.Contains(r, "meeting"), strings.Contains(r, "conferenc"),
			strings.Contains(r, "present"):
			return "meeting"
		}
		return "busy"
	case presence.DoNotDisturb:
		return "busy"
	case presence.Away:
		return "away"
	}
	return ""
}

// note is the human text a PIDF document carries for a line state.
func note(s presence.LineState, act string) string {
	switch {
	case s == presence.DoNotDisturb:
		return "Do not disturb"
	case act == "on-the-phone":
		return "On the phone"
	case act == "meeting":
		return "In a meeting"
	case act == "busy":
		return "Busy"
	case act == "away":
		return "Away"
	case s == presence.Offline:
		return "Offline"
	}
	return "Available"
}

// pidfBody builds the RFC 3863 PIDF document for entity with the RPID
// (RFC 4480) activity of the line state: basic "open" unless the user is
// offline, one person element with the activity and a note.
func pidfBody(entity string, s presence.LineState, reason string) []byte {
	basic := "open"
	if s == presence.Offline {
		basic = "closed"
	}
	act := activity(s, reason)

	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<presence xmlns="urn:ietf:params:xml:ns:pidf"` +
		` xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"` +
		` xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="`)
	writeEscaped(&b, entity)
	b.WriteString("\">\n")
	b.WriteString(`  <tuple id="onesync-line">` + "\n")
	b.WriteString("    <status><basic>" + basic + "</basic></status>\n")
	b.WriteString("  </tuple>\n")
	b.WriteString(`  <dm:person id="onesync-person">` + "\n")
	if act != "" {
		b.WriteString("    <rpid:activities><rpid:" + act + "/></rpid:activities>\n")
	}
	b.WriteString("    <dm:note>")
	writeEscaped(&b, note(s, act))
	b.WriteString("</dm:note>\n")
	b.WriteString("  </dm:person>\n")
	b.WriteString("</presence>\n")
	return b.Bytes()
}

// writeEscaped writes s with the XML special characters escaped, for text
// and for attribute values in double quotes.
func writeEscaped(b *bytes.Buffer, s string) {
	// xml.EscapeText writes to an io.Writer; a bytes.Buffer never fails.
	_ = xml.EscapeText(b, []byte(s))
}
