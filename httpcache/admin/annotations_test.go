package admin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// The annotation keys this package repeats (so as not to link the proxy)
// must match what their owners declare. The owners' sources are parsed,
// not imported, so this test does not depend on them compiling.
func TestAnnotationKeysMatchOwners(t *testing.T) {
	declared := map[string]string{} // value -> "pkg.Name"
	for _, dir := range []string{"..", "../liveview", "../liveview/phxtoken"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		fset := token.NewFileSet()
		for _, f := range files {
			af, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				continue // a file being rewritten by someone else
			}
			ast.Inspect(af, func(n ast.Node) bool {
				vs, ok := n.(*ast.ValueSpec)
				if !ok {
					return true
				}
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							if v, err := strconv.Unquote(bl.Value); err == nil {
								declared[v] = af.Name.Name + "." + name.Name
							}
						}
					}
				}
				return true
			})
		}
	}
	if len(declared) == 0 {
		t.Skip("owner sources not found")
	}
	for _, k := range []string{annPolicy, annVary, annNotAfter, annDisabled, annFindings, annLVExpiry} {
		if _, ok := declared[k]; !ok {
			t.Errorf("annotation %q is no longer declared by httpcache, liveview or phxtoken: adapt meta.go", k)
		}
	}
}
