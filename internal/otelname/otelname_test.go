package otelname

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// TestDocumented: docs/telemetry.md's tables name exactly the metrics and
// attributes declared here, so that a name added, renamed or removed
// cannot go unannounced to the dashboards and alerts built on them.
func TestDocumented(t *testing.T) {
	var declared []string
	f, err := parser.ParseFile(token.NewFileSet(), "otelname.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				name, err := strconv.Unquote(v.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				declared = append(declared, name)
			}
		}
	}
	doc, err := os.ReadFile("../../docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(certcache\\.[a-z_.]+)` \\|").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(m[1]))
	}
	if len(declared) < 20 {
		t.Fatalf("found %d names in otelname.go; the parse went wrong", len(declared))
	}
	slices.Sort(declared)
	slices.Sort(documented)
	if !slices.Equal(declared, documented) {
		t.Errorf("docs/telemetry.md documents\n%q\nbut the code declares\n%q", documented, declared)
	}
}
