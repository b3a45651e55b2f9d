package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered manifest as Kustomize wrote it: a JSON-like tree, which tests
// may change before checking it.
type Object = map[string]any

// Overlays are the environments under overlays/, and Base the shared layer.
var Overlays = []string{"dev", "prod"}

// Render builds the kustomization in dir (base, or overlays/<name>) the way
// `kubectl kustomize dir` does, with the same default load restrictions.
func Render(dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// scheme knows every kind the manifests may hold: Kubernetes' own (client-go) and
// cert-manager's. A kind outside both is an error, not a pass.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict decodes like `kubectl apply --validate=strict`: an unknown field (a misspelling,
// a field at the wrong level) or a field given twice is an error.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Strict: true})

// decode turns a rendered object into its Go type, strictly.
func decode(o Object) (runtime.Object, error) {
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	obj, _, err := strict.Decode(raw, nil, nil)
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// id names an object in messages: Kind/namespace/name.
func id(o Object) string {
	meta, _ := o["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	kind, _ := o["kind"].(string)
	if ns == "" {
		return kind + "/" + name
	}
	return kind + "/" + ns + "/" + name
}

// gvk reads an object's apiVersion and kind.
func gvk(o Object) schema.GroupVersionKind {
	av, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	return schema.FromAPIVersionAndKind(av, kind)
}

// canonical is an object's JSON with sorted keys, for comparing two renders.
func canonical(o Object) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	_ = enc.Encode(o)
	return b.String()
}
