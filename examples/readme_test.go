// Package examples holds no code of its own: its test builds the Go blocks of
// the repository's README.md. (The runnable examples are its subdirectories.)
package examples

// TestReadme checks that every ```go block of ../README.md builds, cleanly.
//
// The convention a README block follows (also written, for whoever edits the
// README, in an HTML comment above its first Go block):
//
//   - A block that starts with "package" is a whole Go file, built as it is.
//   - Any other block is the body of
//
//     func Example(ctx context.Context, cfg aws.Config) error { … }
//
//     and may start with an import declaration, which goes above the
//     function. "return nil" is appended unless the block's last statement is
//     a return. The packages of importTable below that the block names
//     (s3., keyring., …) and does not import itself are imported for it.
//   - A body block may also use, without declaring them, the names declared
//     by the lines that start with "var " in README's HTML comment that
//     mentions examples/readme_test.go (bucket, key, file, provider, c, …).
//     Each is declared, as a package-level variable, only for the blocks that
//     use it and do not declare it themselves. The README, not this test,
//     says what they are, so the test holds no knowledge of the library's API
//     beyond the import paths below.
//
// Each block becomes its own package, in a temporary directory inside this
// module (so that imports resolve through go.mod, or go.work, as a user's
// would), and must pass:
//
//   - the type checker (no undefined names, no unused variables or imports),
//     then go build;
//   - a check for dropped errors: no error assigned to _ (`_ = f()`,
//     `x, _ := g()`), no `_ = x` at all (use the value or drop it), and no call
//     whose error result is ignored (`io.Copy(w, r)` as a statement), except
//     fmt.Print/Printf/Println and a deferred Close;
//   - go vet;
//   - staticcheck, from ../.tools/bin/staticcheck, where ./scripts/test
//     installs it. When it is missing, the test fails if CI or
//     S3ENVELOPE_REQUIRE_STATICCHECK is set (scripts/test sets the latter
//     after installing it), and otherwise reports the staticcheck subtest
//     as skipped, saying why.
//
// Every finding is reported in the subtest of its block, named after the
// README line of the block's first line, with README.md positions.
//
// go test caches a passing result, and its cache cannot see README.md or the
// library: go test rechecks only the files a test opens inside its own
// module (examples/). After editing either, run it with -count=1, as
// ./scripts/test does.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const readmePath = "../README.md"

// importTable maps the package names a body block may use without importing
// them to their import paths.
var importTable = map[string]string{
	"aws":       "github.com/aws/aws-sdk-go-v2/aws",
	"config":    "github.com/aws/aws-sdk-go-v2/config",
	"kms":       "github.com/aws/aws-sdk-go-v2/service/kms",
	"s3":        "github.com/aws/aws-sdk-go-v2/service/s3",
	"envelope":  "github.com/s3envelope/s3envelope/envelope",
	"keyring":   "github.com/s3envelope/s3envelope/keyring",
	"materials": "github.com/s3envelope/s3envelope/materials",
	"s3crypto":  "github.com/s3envelope/s3envelope/s3crypto",
	"bytes":     "bytes",
	"context":   "context",
	"errors":    "errors",
	"fmt":       "fmt",
	"io":        "io",
	"log":       "log",
	"os":        "os",
	"strings":   "strings",
}

// srcLine is one line of README.md: its text and its 1-based number.
type srcLine struct {
	text string
	line int
}

// readmeBlock is one ```go block.
type readmeBlock struct {
	line  int // README.md line of the block's first line (after the fence)
	lines []srcLine
}

// given is a name that body blocks may use undeclared: a "var " line of
// README's HTML comment.
type given struct {
	names []string
	decl  srcLine
}

// genFile is the Go file made of one block; from maps each of its lines to
// a README.md line (0: a line this test added).
type genFile struct {
	lines []string
	from  []int
}

func (g *genFile) add(text string, from int) {
	g.lines = append(g.lines, text)
	g.from = append(g.from, from)
}

func (g *genFile) src() []byte { return []byte(strings.Join(g.lines, "\n") + "\n") }

// pos is a position in g as README.md's: "README.md:L:C", or "README.md
// (generated line N)" for a line this test added.
func (g *genFile) pos(line, col int) string {
	if line < 1 || line > len(g.from) {
		return fmt.Sprintf("README.md (generated line %d)", line)
	}
	if r := g.from[line-1]; r > 0 {
		if col > 0 {
			return fmt.Sprintf("README.md:%d:%d", r, col)
		}
		return fmt.Sprintf("README.md:%d", r)
	}
	return fmt.Sprintf("README.md (generated line %d: %q)", line, g.lines[line-1])
}

// parseReadme returns README's ```go blocks and the givens of its HTML comment
// that mentions examples/readme_test.go.
func parseReadme(t *testing.T, text string) ([]readmeBlock, []given) {
	t.Helper()
	var blocks []readmeBlock
	var givens []given
	var cur *readmeBlock
	var comment []srcLine
	inComment := false
	for i, l := range strings.Split(text, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(l)
		switch {
		case cur != nil:
			if trimmed == "```" {
				blocks = append(blocks, *cur)
				cur = nil
			} else {
				cur.lines = append(cur.lines, srcLine{l, n})
			}
		case inComment || strings.HasPrefix(trimmed, "<!--"):
			inComment = true
			comment = append(comment, srcLine{l, n})
			if strings.Contains(l, "-->") {
				inComment = false
				givens = append(givens, commentGivens(t, comment)...)
				comment = nil
			}
		case trimmed == "```go":
			cur = &readmeBlock{line: n + 1}
		}
	}
	if cur != nil {
		t.Fatalf("README.md:%d: the ```go block is not closed", cur.line-1)
	}
	if inComment {
		t.Fatalf("README.md:%d: the HTML comment is not closed", comment[0].line)
	}
	return blocks, givens
}

func commentGivens(t *testing.T, comment []srcLine) []given {
	t.Helper()
	var all strings.Builder
	for _, l := range comment {
		all.WriteString(l.text + "\n")
	}
	if !strings.Contains(all.String(), "examples/readme_test.go") {
		return nil
	}
	var givens []given
	for _, l := range comment {
		if !strings.HasPrefix(l.text, "var ") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+l.text, 0)
		if err != nil {
			t.Fatalf("README.md:%d: %q is not a Go var declaration: %v", l.line, l.text, err)
		}
		g := given{decl: l}
		for _, d := range f.Decls {
			for _, s := range d.(*ast.GenDecl).Specs {
				for _, id := range s.(*ast.ValueSpec).Names {
					g.names = append(g.names, id.Name)
				}
			}
		}
		givens = append(givens, g)
	}
	return givens
}

// generate makes the Go file of block b.
func generate(b readmeBlock, givens []given) (*genFile, error) {
	first := ""
	for _, l := range b.lines {
		if s := strings.TrimSpace(l.text); s != "" && !strings.HasPrefix(s, "//") {
			first = s
			break
		}
	}
	if strings.HasPrefix(first, "package ") {
		g := &genFile{}
		for _, l := range b.lines {
			g.add(l.text, l.line)
		}
		return g, nil
	}

	// The block's own import declarations, if it starts with them.
	header, body := []srcLine(nil), b.lines
	imported := map[string]bool{}
	if strings.HasPrefix(first, "import") {
		var src strings.Builder
		src.WriteString("package readme\n")
		for _, l := range b.lines {
			src.WriteString(l.text + "\n")
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "", src.String(), parser.ImportsOnly)
		if err != nil || len(f.Decls) == 0 {
			return nil, fmt.Errorf("README.md:%d: the block starts with an import declaration that does not parse: %v", b.line, err)
		}
		end := fset.Position(f.Decls[len(f.Decls)-1].End()).Line - 1 // lines of the block
		header, body = b.lines[:end], b.lines[end:]
		for _, s := range f.Imports {
			p, _ := strconv.Unquote(s.Path.Value) // it parsed, so it unquotes
			name := pathName(p)
			if s.Name != nil {
				name = s.Name.Name
			}
			imported[name] = true
		}
	}

	draft := func(extra []srcLine, imports []string) *genFile {
		g := &genFile{}
		g.add("package readme", 0)
		for _, l := range header {
			g.add(l.text, l.line)
		}
		for _, p := range imports {
			g.add(fmt.Sprintf("import %q", p), 0)
		}
		g.add("func Example(ctx context.Context, cfg aws.Config) error {", 0)
		for _, l := range body {
			g.add(l.text, l.line)
		}
		g.add("}", 0)
		for _, l := range extra {
			g.add(l.text, l.line)
		}
		return g
	}

	// The givens it uses: names its code leaves unresolved.
	g := draft(nil, nil)
	f, err := parseGen(g)
	if err != nil {
		return g, err
	}
	unresolved := map[string]bool{}
	for _, id := range f.Unresolved {
		unresolved[id.Name] = true
	}
	var extra []srcLine
	for _, gv := range givens {
		if slices.ContainsFunc(gv.names, func(n string) bool { return unresolved[n] }) {
			extra = append(extra, gv.decl)
		}
	}

	// The packages it uses without importing them (the signature's too).
	g = draft(extra, nil)
	if f, err = parseGen(g); err != nil {
		return g, err
	}
	need := map[string]bool{"context": true, "aws": true}
	unresolvedIdent := map[*ast.Ident]bool{}
	for _, id := range f.Unresolved {
		unresolvedIdent[id] = true
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && unresolvedIdent[id] && importTable[id.Name] != "" {
				need[id.Name] = true
			}
		}
		return true
	})
	var imports []string
	for _, name := range slices.Sorted(maps.Keys(need)) {
		if !imported[name] {
			imports = append(imports, importTable[name])
		}
	}
	g = draft(extra, imports)

	// return nil, unless the block ends with a return.
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == "Example" {
			fn = d
		}
	}
	if st := fn.Body.List; len(st) == 0 || !isReturn(st[len(st)-1]) {
		closing := len(g.lines) - 1 - len(extra) // the function's "}"
		g.lines = slices.Insert(g.lines, closing, "return nil")
		g.from = slices.Insert(g.from, closing, 0)
	}
	return g, nil
}

func isReturn(s ast.Stmt) bool {
	_, ok := s.(*ast.ReturnStmt)
	return ok
}

// pathName is the package name an import path is known by: the table's, or
// its last element (without a major version suffix).
func pathName(p string) string {
	for name, q := range importTable {
		if q == p {
			return name
		}
	}
	elems := strings.Split(p, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && regexp.MustCompile(`^v[0-9]+$`).MatchString(last) {
		last = elems[len(elems)-2]
	}
	return last
}

// parseGen parses g, with its errors in README.md positions.
func parseGen(g *genFile) (*ast.File, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "readme.go", g.src(), parser.AllErrors)
	if err == nil {
		return f, nil
	}
	var list []string
	if el, ok := err.(scanner.ErrorList); ok {
		for _, e := range el {
			list = append(list, e.Error())
		}
	} else {
		list = append(list, err.Error())
	}
	var msgs []string
	for _, e := range list {
		msgs = append(msgs, mapPositions(e, func(int) *genFile { return g }))
	}
	return nil, errors.New(strings.Join(msgs, "\n"))
}

// positionRE matches a position in one of the generated files, as the go
// command, staticcheck and go/parser print them.
var positionRE = regexp.MustCompile(`(?:\S*/line(\d+)/)?readme\.go:(\d+)(?::(\d+))?`)

// mapPositions rewrites the positions in a generated file of s to README.md
// positions; fileOf(n) is the file of the block at README line n (n is 0
// when the position does not name its directory).
func mapPositions(s string, fileOf func(int) *genFile) string {
	return positionRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := positionRE.FindStringSubmatch(m)
		block, _ := strconv.Atoi(sm[1])
		line, _ := strconv.Atoi(sm[2])
		col, _ := strconv.Atoi(sm[3])
		g := fileOf(block)
		if g == nil {
			return m
		}
		return g.pos(line, col)
	})
}

func TestReadme(t *testing.T) {
	text, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	blocks, givens := parseReadme(t, string(text))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block: is the extraction broken?")
	}

	// A package directory per block, inside this module. Its name starts
	// with "_", so that ./... patterns, go mod tidy and go vet ./... of the
	// module never see one left behind.
	tmp, err := os.MkdirTemp(".", "_readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })

	findings := map[int][]string{} // by block line
	files := map[int]*genFile{}    // the blocks that parsed
	shown := map[int]*genFile{}    // and those that did not
	for _, b := range blocks {
		g, err := generate(b, givens)
		if err != nil {
			findings[b.line] = append(findings[b.line], err.Error())
			if g != nil {
				shown[b.line] = g
			}
			continue
		}
		dir := filepath.Join(tmp, fmt.Sprintf("line%d", b.line))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "readme.go"), g.src(), 0o644); err != nil {
			t.Fatal(err)
		}
		files[b.line], shown[b.line] = g, g
	}
	fileOf := func(line int) *genFile { return files[line] }

	// Type-check each block, then look for dropped errors.
	typed := typeCheck(t, tmp, blocks, files, findings)

	// go build, go vet and staticcheck, on the blocks that type-checked (on
	// the others they would only repeat the type checker's errors).
	var clean []string
	for _, b := range blocks {
		if typed[b.line] {
			clean = append(clean, "./"+filepath.ToSlash(filepath.Join(tmp, fmt.Sprintf("line%d", b.line))))
		}
	}
	var unattributed []string
	if len(clean) > 0 {
		for _, cmd := range []string{"build", "vet"} {
			out, err := runTool("go", append([]string{cmd}, clean...)...)
			if err != nil {
				unattributed = append(unattributed, attribute("go "+cmd, out, err, fileOf, findings)...)
			}
		}
	}
	var staticcheckMissing string
	staticcheck, err := filepath.Abs(filepath.Join("..", ".tools", "bin", "staticcheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staticcheck); err != nil {
		staticcheckMissing = fmt.Sprintf("%s is not installed (%v); ./scripts/test installs it", staticcheck, err)
	} else if len(clean) > 0 {
		out, err := runTool(staticcheck, clean...)
		if err != nil {
			unattributed = append(unattributed, attribute("staticcheck", out, err, fileOf, findings)...)
		}
	}
	for _, msg := range unattributed {
		t.Error(msg)
	}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("README.md:%d", b.line), func(t *testing.T) {
			for _, msg := range findings[b.line] {
				t.Error(msg)
			}
			if t.Failed() {
				if g := shown[b.line]; g != nil {
					t.Logf("the block as built:\n%s", numbered(g))
				}
			}
		})
	}
	t.Run("staticcheck", func(t *testing.T) {
		if staticcheckMissing == "" {
			return // it ran: its findings are in the blocks' subtests
		}
		if why := staticcheckRequired(); why != "" {
			t.Fatalf("staticcheck is required (%s), but %s", why, staticcheckMissing)
		}
		t.Skip("README blocks not checked by staticcheck: " + staticcheckMissing +
			" (with CI or S3ENVELOPE_REQUIRE_STATICCHECK set, this fails)")
	})
}

// staticcheckRequired says why staticcheck must run, or "" when it need not.
func staticcheckRequired() string {
	for _, v := range []string{"S3ENVELOPE_REQUIRE_STATICCHECK", "CI"} {
		if s := os.Getenv(v); s != "" && s != "0" && !strings.EqualFold(s, "false") {
			return v + "=" + s
		}
	}
	return ""
}

// runTool runs name with args in this directory, returning its output.
func runTool(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// attribute files each line of a failed tool's output under the block it
// names, in README.md positions, and returns what names no block.
func attribute(tool, out string, err error, fileOf func(int) *genFile, findings map[int][]string) []string {
	var rest []string
	current := 0
	header := regexp.MustCompile(`^# \S*/line(\d+)$`)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if m := header.FindStringSubmatch(l); m != nil {
			current, _ = strconv.Atoi(m[1])
			continue
		}
		block := current
		if m := positionRE.FindStringSubmatch(l); m != nil && m[1] != "" {
			block, _ = strconv.Atoi(m[1])
		}
		msg := tool + ": " + mapPositions(l, fileOf)
		if fileOf(block) != nil {
			findings[block] = append(findings[block], msg)
		} else {
			rest = append(rest, msg)
		}
	}
	if len(rest) > 0 || !anyAttributed(out, fileOf) {
		rest = append(rest, fmt.Sprintf("%s failed (%v)", tool, err))
	}
	return rest
}

func anyAttributed(out string, fileOf func(int) *genFile) bool {
	for _, m := range positionRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		if fileOf(n) != nil {
			return true
		}
	}
	return false
}

// typeCheck type-checks every block's package against the export data of
// its imports (built by go list -export) and checks it for dropped errors.
// It returns which blocks type-checked.
func typeCheck(t *testing.T, tmp string, blocks []readmeBlock, files map[int]*genFile, findings map[int][]string) map[int]bool {
	t.Helper()
	fset := token.NewFileSet()
	parsed := map[int]*ast.File{}
	paths := map[string]bool{}
	for _, b := range blocks {
		g := files[b.line]
		if g == nil {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(tmp, fmt.Sprintf("line%d", b.line), "readme.go"), g.src(), 0)
		if err != nil { // generate parsed it already
			t.Fatalf("README.md:%d: %v", b.line, err)
		}
		parsed[b.line] = f
		for _, s := range f.Imports {
			p, _ := strconv.Unquote(s.Path.Value)
			paths[p] = true
		}
	}
	exports := map[string]string{}
	if len(paths) > 0 {
		// -e: an import path that does not exist is the type checker's to
		// report, in its block.
		args := append([]string{"list", "-e", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"},
			slices.Sorted(maps.Keys(paths))...)
		out, err := exec.Command("go", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("go list -export: %v\n%s", err, ee.Stderr)
			}
			t.Fatalf("go list -export: %v", err)
		}
		for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(l, "\t")
			if len(f) != 2 {
				t.Fatalf("go list -export printed %q", l)
			}
			if f[1] != "" {
				exports[f[0]] = f[1]
			}
		}
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("go list -export built no export data for %q", path)
		}
		return os.Open(file)
	})

	typed := map[int]bool{}
	for _, b := range blocks {
		f := parsed[b.line]
		if f == nil {
			continue
		}
		g := files[b.line]
		var typeErrs []string
		conf := types.Config{
			Importer: imp,
			Error: func(err error) {
				if te, ok := err.(types.Error); ok {
					p := te.Fset.Position(te.Pos)
					typeErrs = append(typeErrs, g.pos(p.Line, p.Column)+": "+te.Msg)
					return
				}
				typeErrs = append(typeErrs, err.Error())
			},
		}
		info := &types.Info{
			Types: map[ast.Expr]types.TypeAndValue{},
			Uses:  map[*ast.Ident]types.Object{},
		}
		if _, err := conf.Check(fmt.Sprintf("readme/line%d", b.line), fset, []*ast.File{f}, info); err != nil && len(typeErrs) == 0 {
			typeErrs = append(typeErrs, err.Error()) // Error saw them all, unless the checker failed otherwise
		}
		if len(typeErrs) > 0 {
			findings[b.line] = append(findings[b.line], typeErrs...)
			continue
		}
		typed[b.line] = true
		for _, d := range droppedErrors(f, info) {
			p := fset.Position(d.pos)
			findings[b.line] = append(findings[b.line], g.pos(p.Line, p.Column)+": "+d.msg)
		}
	}
	return typed
}

type finding struct {
	pos token.Pos
	msg string
}

// droppedErrors finds the errors f drops: assigned to _, or results of a
// call made as a statement (or deferred) and never looked at.
func droppedErrors(f *ast.File, info *types.Info) []finding {
	errorType := types.Universe.Lookup("error").Type()
	errorIface := errorType.Underlying().(*types.Interface)
	isError := func(t types.Type) bool {
		if b, ok := t.(*types.Basic); t == nil || ok && b.Info()&types.IsUntyped != 0 {
			return false // no value, or an untyped constant or nil
		}
		return types.Identical(t, errorType) || types.Implements(t, errorIface)
	}
	results := func(e ast.Expr) []types.Type {
		tv, ok := info.Types[e]
		if !ok || tv.IsVoid() || tv.Type == nil {
			return nil
		}
		if tuple, ok := tv.Type.(*types.Tuple); ok {
			var ts []types.Type
			for v := range tuple.Variables() {
				ts = append(ts, v.Type())
			}
			return ts
		}
		return []types.Type{tv.Type}
	}
	isBlank := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Name == "_"
	}
	callee := func(call *ast.CallExpr) *types.Func {
		var id *ast.Ident
		switch fun := ast.Unparen(call.Fun).(type) {
		case *ast.Ident:
			id = fun
		case *ast.SelectorExpr:
			id = fun.Sel
		}
		fn, _ := info.Uses[id].(*types.Func)
		return fn
	}
	var out []finding
	// blanks reports the errors of rhs that lhs assigns to _.
	blanks := func(lhs []ast.Expr, rhs []ast.Expr) {
		if len(lhs) == 1 && len(rhs) == 1 && isBlank(lhs[0]) {
			out = append(out, finding{lhs[0].Pos(), "`_ = …` discards a value: check the error, or use the value, or remove it"})
			return
		}
		var ts []types.Type
		if len(rhs) == 1 && len(lhs) > 1 {
			ts = results(rhs[0])
		} else {
			for _, e := range rhs {
				r := results(e)
				if len(r) != 1 {
					r = []types.Type{nil}
				}
				ts = append(ts, r...)
			}
		}
		for i, e := range lhs {
			if i < len(ts) && isBlank(e) && isError(ts[i]) {
				out = append(out, finding{e.Pos(), "an error is assigned to _: check it"})
			}
		}
	}
	unchecked := func(call *ast.CallExpr, deferred bool) {
		if !slices.ContainsFunc(results(call), isError) {
			return
		}
		fn := callee(call)
		if fn != nil {
			if deferred && fn.Name() == "Close" {
				return // defer x.Close(): the idiom for a body being read
			}
			if fn.Pkg() != nil && fn.Pkg().Path() == "fmt" &&
				(fn.Name() == "Print" || fn.Name() == "Printf" || fn.Name() == "Println") {
				return
			}
		}
		out = append(out, finding{call.Pos(), "the error this call returns is not checked"})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			blanks(n.Lhs, n.Rhs)
		case *ast.ValueSpec:
			if len(n.Values) > 0 {
				lhs := make([]ast.Expr, len(n.Names))
				for i, id := range n.Names {
					lhs[i] = id
				}
				blanks(lhs, n.Values)
			}
		case *ast.ExprStmt:
			if call, ok := ast.Unparen(n.X).(*ast.CallExpr); ok {
				unchecked(call, false)
			}
		case *ast.DeferStmt:
			unchecked(n.Call, true)
		case *ast.GoStmt:
			unchecked(n.Call, false)
		}
		return true
	})
	return out
}

// numbered is g's text with README.md line numbers.
func numbered(g *genFile) string {
	var b strings.Builder
	for i, l := range g.lines {
		if g.from[i] > 0 {
			fmt.Fprintf(&b, "%5d  %s\n", g.from[i], l)
		} else {
			fmt.Fprintf(&b, "   +   %s\n", l)
		}
	}
	return b.String()
}
