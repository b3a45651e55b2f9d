package config_test

import (
	"slices"
	"testing"

	"example.com/shop/platform/config"
)

type twoPrefixes struct {
	Addr   string `env:"SVC_ADDR"`
	Issuer string `env:"OIDC_ISSUER"`
	Nested struct {
		Key string `env:"SVC_KEY" secret:"true"`
	}
	untagged string
}

func TestVarsListsEveryTaggedFieldWithItsSecrecy(t *testing.T) {
	got := config.Vars(&twoPrefixes{})
	want := []config.Var{{Name: "SVC_ADDR"}, {Name: "OIDC_ISSUER"}, {Name: "SVC_KEY", Secret: true}}
	if !slices.Equal(got, want) {
		t.Fatalf("Vars = %v, want %v", got, want)
	}
}

func TestUnknownNamesVariablesWithTheConfigsPrefixesOnly(t *testing.T) {
	environ := []string{
		"SVC_ADDR=:1", "SVC_KEY_FILE=/run/key", "OIDC_ISSUER=http://kc", // known, and a _FILE form
		"SVC_ADRR=:2",         // a typo: silently ignored by Load, so reported here
		"OIDC_AUDIENCE=x",     // the shared prefix counts too
		"SVC_ADRR=:3",         // reported once
		"PATH=/bin", "HOME=/", // not meant for this service
		"SVCX_ADDR=:4", // another prefix
		"OTHER_SVC_ADDR=:5",
		"NOVALUE",
	}
	got := config.Unknown(environ, twoPrefixes{})
	if want := []string{"OIDC_AUDIENCE", "SVC_ADRR"}; !slices.Equal(got, want) {
		t.Fatalf("Unknown = %v, want %v", got, want)
	}
	if got := config.Unknown([]string{"SVC_ADDR=:1", "OIDC_ISSUER=x"}, twoPrefixes{}); len(got) != 0 {
		t.Fatalf("known variables reported unknown: %v", got)
	}
}
