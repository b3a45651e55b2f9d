package config

import (
	"reflect"
	"slices"
	"strings"
	"time"
)

// Var is one environment variable a config struct reads.
type Var struct {
	Name   string
	Secret bool // tagged secret:"true": masked in logs, and never to be written in plain manifests
}

// Vars lists the variables the config struct cfg (a struct or a pointer to one) reads, in
// field order. NAME_FILE is implied for each.
func Vars(cfg any) []Var {
	var vars []Var
	walkVars(reflect.Indirect(reflect.ValueOf(cfg)).Type(), &vars)
	return vars
}

func walkVars(t reflect.Type, vars *[]Var) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() && f.Tag.Get("env") == "" {
			walkVars(f.Type, vars)
			continue
		}
		if name := f.Tag.Get("env"); name != "" && f.IsExported() {
			*vars = append(*vars, Var{Name: name, Secret: f.Tag.Get("secret") == "true"})
		}
	}
}

// Unknown returns, sorted, the names in environ (NAME=value pairs, as os.Environ gives them)
// that look meant for cfg but that it does not read: names that begin with the prefix of
// one of its variables (up to and including the first underscore, so ORDER_ and OIDC_ for
// the order service) and are neither one of them nor its NAME_FILE form. A misspelt
// variable is otherwise silently ignored and its default used, which is how a deployment
// ends up with a setting nobody chose.
func Unknown(environ []string, cfg any) []string {
	known := map[string]bool{}
	var prefixes []string
	for _, v := range Vars(cfg) {
		known[v.Name], known[v.Name+"_FILE"] = true, true
		if i := strings.IndexByte(v.Name, '_'); i > 0 && !slices.Contains(prefixes, v.Name[:i+1]) {
			prefixes = append(prefixes, v.Name[:i+1])
		}
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if known[name] || slices.Contains(unknown, name) {
			continue
		}
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}
