// Package dockerfile reads the parts of a Dockerfile that faultline's tools rely on: the
// global ARG defaults and the named stages with their instructions. The test of the
// images and the builder of the test cluster's images (hack/cluster/image) read the
// Dockerfile through it, so the Dockerfile stays the one description of the images.
package dockerfile

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// File is a parsed Dockerfile.
type File struct {
	Args   map[string]string // global ARG defaults (before the first FROM)
	Stages map[string]*Stage // by stage name
}

// Stage is one FROM ... AS name section.
type Stage struct {
	Name, From string
	Lines      []string // instructions after FROM, continuation lines joined
}

// Parse reads a Dockerfile. Every FROM must name its stage.
func Parse(r io.Reader) (*File, error) {
	f := &File{Args: map[string]string{}, Stages: map[string]*Stage{}}
	var cur *Stage
	var pending string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		instr, rest, _ := strings.Cut(line, " ")
		switch {
		case strings.EqualFold(instr, "FROM"):
			fields := slices.DeleteFunc(strings.Fields(rest), func(s string) bool { return strings.HasPrefix(s, "--platform") })
			if len(fields) != 3 || !strings.EqualFold(fields[1], "AS") {
				return nil, fmt.Errorf("FROM without a stage name: %s", line)
			}
			cur = &Stage{Name: fields[2], From: fields[0]}
			f.Stages[cur.Name] = cur
		case cur == nil && strings.EqualFold(instr, "ARG"):
			k, v, _ := strings.Cut(rest, "=")
			f.Args[k] = v
		case cur != nil:
			cur.Lines = append(cur.Lines, line)
		}
	}
	return f, sc.Err()
}

// Instructions returns the arguments of every instruction called name, in order.
func (s *Stage) Instructions(name string) []string {
	var out []string
	for _, l := range s.Lines {
		if instr, rest, _ := strings.Cut(l, " "); strings.EqualFold(instr, name) {
			out = append(out, rest)
		}
	}
	return out
}

// Copy is a COPY --from=<stage> of one file.
type Copy struct{ From, Src, Dst string }

// Copies returns the stage's COPY --from instructions.
func (s *Stage) Copies() ([]Copy, error) {
	var out []Copy
	for _, c := range s.Instructions("COPY") {
		fields := strings.Fields(c)
		if len(fields) != 3 || !strings.HasPrefix(fields[0], "--from=") {
			return nil, fmt.Errorf("stage %s: COPY %s: want COPY --from=<stage> <src> <dst>", s.Name, c)
		}
		out = append(out, Copy{From: strings.TrimPrefix(fields[0], "--from="), Src: fields[1], Dst: fields[2]})
	}
	return out, nil
}
