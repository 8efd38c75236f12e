package onecloudsim

import (
	"fmt"

	"github.com/setera/onesync/pbx"
)

// DemoOrg is the organisation SeedDemo creates.
const DemoOrg = "demo"

// DemoOrgName is the display name of DemoOrg.
const DemoOrgName = "Demo Oy"

// DemoExtensions returns the extensions of the demo organisation. They are
// meant to match the Graph simulator's demo tenant of twelve Teams users
// (firstname.lastname@demo-oy.example, ä and ö folded to a and o) most but
// not all of the way, so that the import report has something in every
// column:
//
//   - 1001 to 1009 match a Teams user by email: Aino Virtanen, Eero
//     Korhonen, Helmi Mäkinen, Onni Nieminen, Venla Mäkelä, Leo Hämäläinen,
//     Sofia Laine, Elias Heikkinen, Väinö Järvinen.
//   - 1010 (Aada Koskinen) carries no email, only the phone number
//     +358401234510, so it matches her Teams user by phone alone.
//   - 1000 Reception and 1099 Conference room have no Teams user.
//   - The Teams users Lilja Lehtonen and Eino Lehtinen have no extension.
//
// The list is the same on every call.
func DemoExtensions() []pbx.Extension {
	byEmail := []struct{ name, email string }{
		{"Aino Virtanen", "aino.virtanen"},
		{"Eero Korhonen", "eero.korhonen"},
		{"Helmi Mäkinen", "helmi.makinen"},
		{"Onni Nieminen", "onni.nieminen"},
		{"Venla Mäkelä", "venla.makela"},
		{"Leo Hämäläinen", "leo.hamalainen"},
		{"Sofia Laine", "sofia.laine"},
		{"Elias Heikkinen", "elias.heikkinen"},
		{"Väinö Järvinen", "vaino.jarvinen"},
	}

	exts := []pbx.Extension{{Number: "1000", Name: "Reception"}}
	for i, u := range byEmail {
		exts = append(exts, pbx.Extension{
			Number: fmt.Sprintf("%d", 1001+i),
			Name:   u.name,
			Email:  u.email + "@demo-oy.example",
		})
	}
	// Matched by phone only: no email on purpose.
	exts = append(exts,
		pbx.Extension{Number: "1010", Name: "Aada Koskinen", Phone: "+358401234510"},
		pbx.Extension{Number: "1099", Name: "Conference room"},
	)
	return exts
}

// SeedDemo creates the demo organisation with DemoExtensions, replacing
// its extensions if it exists.
func SeedDemo(s *Sim) error {
	s.AddOrg(DemoOrg, DemoOrgName)
	if err := s.SetExtensions(DemoOrg, DemoExtensions()); err != nil {
		return fmt.Errorf("seed demo organisation: %w", err)
	}
	return nil
}
