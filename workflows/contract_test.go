package workflows

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestContractTypesCarryNoSecrets walks every type that crosses the
// workflow boundary (inputs, signals, results, query answers) and fails on
// a field whose Go or JSON name suggests a secret: such a value would stay
// in workflow history for as long as it is kept.
func TestContractTypesCarryNoSecrets(t *testing.T) {
	boundary := []any{
		OnboardingInput{}, ApproveSignal{}, RejectSignal{}, ConsentGrantedSignal{},
		ConsentFailedSignal{}, OnboardingStatus{}, RecordStageInput{}, RemindStaffInput{},
		VerifyConsentInput{}, VerifyConsentResult{}, ImportUsersInput{}, ImportResult{},
		PresenceSyncInput{}, PendingSignal{}, SyncTotals{}, SyncPresenceInput{},
		SyncPresenceResult{}, RefreshUsersInput{}, RefreshUsersResult{}, ReleaseLinesInput{},
		ReleaseLinesResult{}, MarkTenantInput{}, PresenceSyncStatus{}, LineRecord{},
	}
	suspicious := []string{
		"password", "passwd", "secret", "token", "apikey", "api_key", "credential",
		"bearer", "hmac", "privatekey", "cookie",
	}

	checked := 0
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice ||
			typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ == reflect.TypeFor[time.Time]() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			field := typ.Field(i)
			names := strings.ToLower(field.Name + " " + field.Tag.Get("json"))
			for _, word := range suspicious {
				if strings.Contains(names, word) {
					t.Errorf("%s.%s looks like a secret (%q): secrets must not enter history",
						path, field.Name, word)
				}
			}
			checked++
			walk(path+"."+field.Name, field.Type)
		}
	}
	for _, v := range boundary {
		typ := reflect.TypeOf(v)
		walk(typ.Name(), typ)
	}
	if checked < 80 {
		t.Fatalf("only %d fields checked: the walk missed types", checked)
	}
}

// TestContractIDsRoundTrip checks that each ID helper has a parser back.
func TestContractIDsRoundTrip(t *testing.T) {
	if got, ok := ParseOnboardingID(OnboardingID("org-7")); !ok || got != "org-7" {
		t.Errorf("ParseOnboardingID(OnboardingID(org-7)) = %q, %v", got, ok)
	}
	if got, ok := ParsePresenceSyncID(PresenceSyncID(testTenant)); !ok || got != testTenant {
		t.Errorf("ParsePresenceSyncID(PresenceSyncID(tenant)) = %q, %v", got, ok)
	}
	if _, ok := ParsePresenceSyncID(OnboardingID("org-7")); ok {
		t.Error("an onboarding ID parsed as a presence sync ID")
	}
}
