package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/util/yaml"
)

// layers are what the check renders: the base on its own, and each overlay.
var layers = map[string]string{"base": "base", "dev": "overlays/dev", "prod": "overlays/prod"}

var (
	checkerOnce sync.Once
	checker     ConfigChecker
	checkerErr  error
	binDir      string
)

// TestMain builds the services' binaries once for every test, in a folder removed after.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-check-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// configChecker builds the services once (go build into a temporary folder).
func configChecker(t *testing.T) ConfigChecker {
	t.Helper()
	checkerOnce.Do(func() { checker, checkerErr = BuildConfigChecker("..", binDir) })
	if checkerErr != nil {
		t.Fatal(checkerErr)
	}
	return checker
}

func render(t *testing.T, layer string) []Object {
	t.Helper()
	objs, err := Render(layers[layer])
	if err != nil {
		t.Fatalf("rendering %s: %v", layer, err)
	}
	return objs
}

// TestLayersPassEveryRule is the check itself: each overlay and the base, rendered in
// process, break no rule.
func TestLayersPassEveryRule(t *testing.T) {
	for _, layer := range []string{"base", "dev", "prod"} {
		t.Run(layer, func(t *testing.T) {
			objs := render(t, layer)
			opts := Options{Layer: layer, Config: configChecker(t)}
			if layer == "base" {
				// The base alone lacks what overlays add (shop-urls, Secrets, images' tags):
				// only the rules that must hold of it already.
				for _, p := range Check(objs, opts) {
					if slices.Contains([]string{"decode", "schema", "pod-security", "resources", "service-account", "shutdown", "services", "secrets"}, p.Rule) {
						t.Error(p)
					}
				}
				return
			}
			for _, p := range Check(objs, opts) {
				t.Error(p)
			}
			t.Logf("%s: %d objects", layer, len(objs))
		})
	}
}

// TestKubectlRendersTheSameObjects: `kubectl kustomize`, which users run, gives exactly the
// objects the check saw.
func TestKubectlRendersTheSameObjects(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		// A skip would turn a missing tool into a pass: the check promises users that what
		// they apply with kubectl is what it checked.
		t.Fatal("kubectl is not installed: it renders what users apply (kubectl kustomize); install it to run this check")
	}
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", layers[overlay]).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("kubectl kustomize: %v\n%s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			var theirs []string
			dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
			for {
				var o Object
				if err := dec.Decode(&o); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				theirs = append(theirs, canonical(o))
			}
			var ours []string
			for _, o := range render(t, overlay) {
				ours = append(ours, canonical(o))
			}
			slices.Sort(theirs)
			slices.Sort(ours)
			if !slices.Equal(theirs, ours) {
				for _, o := range ours {
					if !slices.Contains(theirs, o) {
						t.Errorf("only the in-process render has %s", o)
					}
				}
				for _, o := range theirs {
					if !slices.Contains(ours, o) {
						t.Errorf("only kubectl has %s", o)
					}
				}
			}
		})
	}
}

// TestReadmeDrawsTheCallGraph: the picture in deploy/README.md is the declared graph.
func TestReadmeDrawsTheCallGraph(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```mermaid\n"+Mermaid()+"```") {
		t.Fatalf("deploy/README.md's mermaid block is not the call graph; put this there:\n%s", Mermaid())
	}
}

// TestOperatorSecretsAreDocumented: each Secret the operator provides is in the README.
func TestOperatorSecretsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(".", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, keys := range OperatorSecrets {
		for key := range keys {
			if !strings.Contains(string(readme), name) || !strings.Contains(string(readme), key) {
				t.Errorf("deploy/README.md does not tell the operator about Secret %s key %s", name, key)
			}
		}
	}
}
