package prompts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Registry holds every version of every prompt loaded from a directory. It
// is immutable after LoadDir and safe for concurrent use; reload by calling
// LoadDir again and swapping the pointer.
type Registry struct {
	prompts map[string]*family
}

type family struct {
	current  int
	versions map[int]*Prompt
}

type fileYAML struct {
	Name     string        `yaml:"name"`
	Current  int           `yaml:"current"`
	Versions []versionYAML `yaml:"versions"`
}

type versionYAML struct {
	Version   int            `yaml:"version"`
	Changelog string         `yaml:"changelog"`
	System    string         `yaml:"system"`
	FewShot   []messageYAML  `yaml:"few_shot"`
	Variables []variableYAML `yaml:"variables"`
	Model     modelYAML      `yaml:"model"`
	line      int
}

type messageYAML struct {
	Role    string `yaml:"role"`
	Content string `yaml:"content"`
}

type variableYAML struct {
	Name     string  `yaml:"name"`
	Default  *string `yaml:"default"`
	Required bool    `yaml:"required"`
}

type modelYAML struct {
	Allowed   []string `yaml:"allowed"`
	MaxTokens int64    `yaml:"max_tokens"`
}

// UnmarshalYAML records the line of each version for error messages.
// Node.Decode does not inherit KnownFields, so unknown keys are checked here.
func (v *versionYAML) UnmarshalYAML(n *yaml.Node) error {
	type plain versionYAML
	if err := checkKeys(n, "version", "changelog", "system", "few_shot", "variables", "model"); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		val := n.Content[i+1]
		var err error
		switch n.Content[i].Value {
		case "model":
			err = checkKeys(val, "allowed", "max_tokens")
		case "few_shot", "variables":
			keys := []string{"role", "content"}
			if n.Content[i].Value == "variables" {
				keys = []string{"name", "default", "required"}
			}
			for _, item := range val.Content {
				if err = checkKeys(item, keys...); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if err := n.Decode((*plain)(v)); err != nil {
		return err
	}
	v.line = n.Line
	return nil
}

// LoadDir loads every *.yaml and *.yml file of dir (not recursive). Every
// problem is reported, each prefixed with file:line.
func LoadDir(dir string) (*Registry, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	return LoadFS(os.DirFS(dir), dir)
}

// LoadFS is LoadDir on the root of fsys (e.g. prompt files compiled into
// the binary with go:embed); name stands for that root in messages.
func LoadFS(fsys fs.FS, name string) (*Registry, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	r := &Registry{prompts: map[string]*family{}}
	seen := map[string]string{}
	var errs []error
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(name, e.Name())
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("prompts: %w", err))
			continue
		}
		fam, pname, err := parseFile(path, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := seen[pname]; dup {
			errs = append(errs, fmt.Errorf("%s:1: prompt %q is already defined in %s", path, pname, prev))
			continue
		}
		seen[pname] = path
		r.prompts[pname] = fam
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// parseFile parses one prompt file; path is used in messages only.
func parseFile(path string, data []byte) (*family, string, error) {
	var f fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, "", fmt.Errorf("%s:%s", path, yamlErr(err))
	}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	if !validName(f.Name) {
		bad(1, "name %q must be non-empty letters, digits, '_', '-', '.'", f.Name)
	}
	fam := &family{current: f.Current, versions: map[int]*Prompt{}}
	if len(f.Versions) == 0 {
		bad(1, "prompt %q has no versions", f.Name)
	}
	for _, v := range f.Versions {
		if v.Version <= 0 {
			bad(v.line, "version must be a positive integer")
			continue
		}
		if _, dup := fam.versions[v.Version]; dup {
			bad(v.line, "version %d is defined twice", v.Version)
			continue
		}
		p := &Prompt{
			Name: f.Name, Version: v.Version, System: v.System, Allowed: v.Model.Allowed,
			MaxTokens: v.Model.MaxTokens, Changelog: strings.TrimSpace(v.Changelog), File: path, Line: v.line,
		}
		if v.System == "" && len(v.FewShot) == 0 {
			bad(v.line, "version %d: needs a system prompt or few-shot messages", v.Version)
		}
		if v.Model.MaxTokens < 0 {
			bad(v.line, "version %d: model.max_tokens must not be negative", v.Version)
		}
		for i, m := range v.FewShot {
			switch m.Role {
			case "system", "user", "assistant", "developer":
			default:
				bad(v.line, "version %d: few_shot[%d]: role %q must be system, user, assistant or developer", v.Version, i, m.Role)
			}
			p.FewShot = append(p.FewShot, Message(m))
		}
		names := map[string]bool{}
		for _, vr := range v.Variables {
			if !validName(vr.Name) {
				bad(v.line, "version %d: variable name %q is invalid", v.Version, vr.Name)
			}
			if names[vr.Name] {
				bad(v.line, "version %d: variable %q declared twice", v.Version, vr.Name)
			}
			names[vr.Name] = true
			if vr.Required && vr.Default != nil {
				bad(v.line, "version %d: variable %q is required and has a default", v.Version, vr.Name)
			}
			pv := Variable{Name: vr.Name, Required: vr.Required || vr.Default == nil}
			if vr.Default != nil {
				pv.Default = *vr.Default
			}
			p.Variables = append(p.Variables, pv)
		}
		if err := p.compile(); err != nil {
			bad(v.line, "version %d: %v", v.Version, err)
		}
		fam.versions[v.Version] = p
	}
	switch {
	case f.Current == 0 && len(f.Versions) > 0:
		bad(1, "current: pin the version a bare %q resolves to", f.Name)
	case f.Current != 0 && fam.versions[f.Current] == nil && len(errs) == 0:
		bad(1, "current: version %d does not exist", f.Current)
	}
	if len(errs) > 0 {
		return nil, "", errors.Join(errs...)
	}
	fam.versions[f.Current].Current = true
	return fam, f.Name, nil
}

// yamlErr turns "yaml: line 3: ..." into "3: ...".
func yamlErr(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "\n  ", " ")
	if strings.HasPrefix(msg, "line ") {
		return strings.TrimPrefix(msg, "line ")
	}
	if strings.HasPrefix(msg, "unmarshal errors: line ") {
		return strings.TrimPrefix(msg, "unmarshal errors: line ")
	}
	return "1: " + msg
}

// Resolve finds the prompt named by ref: "name@version" ("name@v3" is
// accepted too) or "name" for the version pinned by current.
func (r *Registry) Resolve(ref string) (*Prompt, error) {
	name, ver, hasVer := strings.Cut(strings.TrimSpace(ref), "@")
	fam := r.prompts[name]
	if fam == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPrompt, ref)
	}
	if !hasVer {
		return fam.versions[fam.current], nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ver, "v"))
	if err != nil {
		return nil, fmt.Errorf("%w: %q (version must be a number)", ErrUnknownPrompt, ref)
	}
	p := fam.versions[n]
	if p == nil {
		return nil, fmt.Errorf("%w: %q (no version %d)", ErrUnknownPrompt, ref, n)
	}
	return p, nil
}

// Names lists the prompt names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.prompts))
	for n := range r.prompts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Versions lists the versions of a prompt, ascending; nil if unknown.
func (r *Registry) Versions(name string) []int {
	fam := r.prompts[name]
	if fam == nil {
		return nil
	}
	out := make([]int, 0, len(fam.versions))
	for v := range fam.versions {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// checkKeys rejects keys of mapping n not in allowed (other kinds pass; the
// decoder reports type errors).
func checkKeys(n *yaml.Node, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		known := false
		for _, a := range allowed {
			known = known || a == k.Value
		}
		if !known {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", k.Line, k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}
