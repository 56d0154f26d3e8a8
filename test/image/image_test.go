// Package image tests the Dockerfile without a container engine (none runs on the
// project's build machines): its stages are read and checked against the rules the images
// must follow, and its build stage is run here on a copy of the build context filtered by
// .dockerignore, exactly as docker would run it, so the binaries the images would contain
// are built and inspected.
package image

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/dockerfile"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// targets are the images `make image` builds: target name = binary suffix.
var targets = []string{"agent", "aggregator", "demo", "injector"}

// parseDockerfile parses the repository's Dockerfile.
func parseDockerfile(t *testing.T) (args map[string]string, stages map[string]*dockerfile.Stage) {
	t.Helper()
	f, err := os.Open(filepath.Join(testbin.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := dockerfile.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return d.Args, d.Stages
}

func TestDockerfileStages(t *testing.T) {
	args, stages := parseDockerfile(t)
	base := args["BASE_IMAGE"]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") || !strings.HasSuffix(base, ":nonroot") {
		t.Errorf("BASE_IMAGE %q is not distroless static nonroot", base)
	}
	if want := strings.TrimPrefix(runtime.Version(), "go"); args["GO_VERSION"] != want {
		t.Errorf("Dockerfile GO_VERSION %q; the toolchain the tests run with is %s", args["GO_VERSION"], want)
	}
	build := stages["build"]
	if build == nil {
		t.Fatal("no build stage")
	}
	if !slices.ContainsFunc(build.Instructions("RUN"), func(r string) bool {
		return strings.Contains(r, `make build VERSION="${VERSION}" BIN=/out`)
	}) {
		t.Error("the build stage does not run `make build` (the Makefile's flags are the tested ones)")
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			s := stages[target]
			if s == nil {
				t.Fatalf("no stage %q: docker build --target %s fails", target, target)
			}
			if s.From != "${BASE_IMAGE}" {
				t.Errorf("stage %s is FROM %s, want ${BASE_IMAGE}", target, s.From)
			}
			// No shell in the image means no RUN in the final stage.
			for _, instr := range []string{"RUN", "SHELL", "ADD"} {
				if got := s.Instructions(instr); len(got) > 0 {
					t.Errorf("stage %s has %s %q", target, instr, got)
				}
			}
			if diff := cmp.Diff([]string{"65532:65532"}, s.Instructions("USER")); diff != "" {
				t.Errorf("USER (-want +got):\n%s", diff)
			}
			binary := "/faultline-" + target
			entry := s.Instructions("ENTRYPOINT")
			var argv []string
			if len(entry) != 1 || json.Unmarshal([]byte(entry[0]), &argv) != nil || !slices.Equal(argv, []string{binary}) {
				t.Errorf("ENTRYPOINT %q, want exec form [%q]", entry, binary)
			}
			if !slices.Contains(s.Instructions("COPY"), "--from=build /out/faultline-"+target+" "+binary) {
				t.Errorf("stage %s does not copy %s from the build stage: %q", target, binary, s.Instructions("COPY"))
			}
		})
	}
}

// contextFiles copies the repository into dst the way docker sends the build context:
// without what .dockerignore excludes.
func contextFiles(t *testing.T, dst string) {
	t.Helper()
	root := testbin.RepoRoot()
	raw, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			if name, ok := strings.CutPrefix(p, "**/"); ok {
				if m, _ := filepath.Match(name, filepath.Base(rel)); m {
					return true
				}
			} else if m, _ := filepath.Match(p, rel); m {
				return true
			}
		}
		return false
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBuildStage runs the Dockerfile's build-stage commands on the filtered build context
// and checks the binaries the final stages copy: present, statically linked (the base
// image has no libc), stamped with the version passed as a build argument, and built
// with the flags and tags the tests and benchmarks build them with (internal/testbin).
func TestBuildStage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	for _, target := range targets {
		if _, err := os.Stat(filepath.Join(testbin.RepoRoot(), "cmd", "faultline-"+target)); err != nil {
			testbin.Missing(t, "cmd/faultline-%s does not exist yet, so the image cannot be built", target)
		}
	}
	makeBin := testbin.Tool(t, "make", "install GNU make")
	_, stages := parseDockerfile(t)
	var run string
	for _, r := range stages["build"].Instructions("RUN") {
		if strings.Contains(r, "make build") {
			run = r
		}
	}
	// Drop the BuildKit cache mounts; the Go caches here play their part.
	run = regexp.MustCompile(`--mount=\S+\s*`).ReplaceAllString(run, "")

	src := filepath.Join(t.TempDir(), "src")
	out := filepath.Join(t.TempDir(), "out")
	contextFiles(t, src)
	const version = "v9.8.7-imagetest"
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(run, "/out", out))
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"VERSION="+version, "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH,
		"PATH="+filepath.Dir(makeBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stage failed: %v\n%s", err, b)
	}

	_, stages = parseDockerfile(t)
	for _, target := range targets {
		for _, c := range stages[target].Instructions("COPY") {
			from := strings.Fields(strings.TrimPrefix(c, "--from=build "))[0]
			path := filepath.Join(out, strings.TrimPrefix(from, "/out/"))
			checkStatic(t, path)
			if filepath.Base(path) == "faultline-"+target {
				checkBuildSettings(t, path, "faultline-"+target)
			}
			// The demo does not report a version; the agent and aggregator do.
			if target != "demo" && strings.HasSuffix(path, "faultline-"+target) {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b, []byte(version)) {
					t.Errorf("%s is not stamped with version %s", filepath.Base(path), version)
				}
			}
		}
	}
}

// checkBuildSettings fails unless the binary at path was built as testbin builds
// ./cmd/<name>: the same build tags, -trimpath, no cgo.
func checkBuildSettings(t *testing.T, path, name string) {
	t.Helper()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	got := map[string]string{}
	for _, s := range info.Settings {
		got[s.Key] = s.Value
	}
	want := map[string]string{"-tags": testbin.Tags(name), "-trimpath": "true", "CGO_ENABLED": "0"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s is built with %s=%q; internal/testbin builds it with %q, so the tests and benchmarks run another binary than the image ships", name, k, got[k], w)
		}
	}
}

// checkStatic fails unless path is an executable without a dynamic loader or shared
// library dependencies.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", filepath.Base(path), err)
		return
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s needs a dynamic loader: it would not start on distroless static", filepath.Base(path))
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v", filepath.Base(path), libs)
	}
}
