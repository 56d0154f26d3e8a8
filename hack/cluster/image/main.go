// Command image builds faultline's images as OCI image archives without a container
// engine, for the test cluster (hack/cluster), which imports them into containerd.
//
// The Dockerfile stays the one description of the images: the build stage's `make build`
// command is run here as docker would run it, and each final stage (agent, aggregator,
// demo, injector) becomes an image holding the files it COPYs from the build stage, with its USER,
// ENTRYPOINT and EXPOSE. In place of the distroless base the images get what the
// binaries use of it: /etc/passwd and /etc/group with the nonroot user, the CA bundle
// and /tmp. The sandbox ("pause") image is built from hack/cluster/pause.
//
//	go run ./hack/cluster/image -out DIR -repo faultline.test -tag v0.1.0 -version v0.1.0
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/faultline-dev/faultline/internal/dockerfile"
)

// PauseImage is the sandbox image name the kubelet and containerd are configured with.
const PauseImage = "registry.k8s.io/pause:3.10"

func main() {
	out := flag.String("out", "", "directory for the binaries (bin/) and the image archives (required)")
	repo := flag.String("repo", "faultline.test", "image name prefix: <repo>/faultline-<target>:<tag>")
	tag := flag.String("tag", "", "tag of the images (required)")
	version := flag.String("version", "dev", "version stamped into the binaries (VERSION of the Dockerfile)")
	flag.Parse()
	if *out == "" || *tag == "" {
		fmt.Fprintln(os.Stderr, "image: -out and -tag are required")
		os.Exit(2)
	}
	if err := run(*out, *repo, *tag, *version); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(out, repo, tag, version string) error {
	df, err := os.Open("Dockerfile")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	f, err := dockerfile.Parse(df)
	df.Close()
	if err != nil {
		return fmt.Errorf("read the Dockerfile: %w", err)
	}
	bin := filepath.Join(out, "bin")
	if err := buildStage(f, bin, version); err != nil {
		return err
	}
	for _, target := range []string{"agent", "aggregator", "demo", "injector"} {
		s := f.Stages[target]
		if s == nil {
			return fmt.Errorf("the Dockerfile has no stage %q", target)
		}
		img, err := stageImage(s, bin)
		if err != nil {
			return err
		}
		if err := write(img, fmt.Sprintf("%s/faultline-%s:%s", repo, target, tag), filepath.Join(out, "faultline-"+target+".tar")); err != nil {
			return err
		}
	}
	pause := filepath.Join(bin, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", pause, "./hack/cluster/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause: %v\n%s", err, b)
	}
	img, err := image(map[string]string{"/pause": pause}, v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"})
	if err != nil {
		return err
	}
	return write(img, PauseImage, filepath.Join(out, "pause.tar"))
}

// buildStage runs the build stage's `make build` command with its output directory
// /out replaced by bin, as TestBuildStage (test/image) does.
func buildStage(f *dockerfile.File, bin, version string) error {
	build := f.Stages["build"]
	if build == nil {
		return errors.New("the Dockerfile has no build stage")
	}
	var run string
	for _, r := range build.Instructions("RUN") {
		if strings.Contains(r, "make build") {
			run = r
		}
	}
	if run == "" {
		return errors.New("the Dockerfile's build stage runs no `make build`")
	}
	run = regexp.MustCompile(`--mount=\S+\s*`).ReplaceAllString(run, "")
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(run, "/out", bin))
	cmd.Env = append(os.Environ(), "VERSION="+version, "TARGETOS=linux", "TARGETARCH="+runtime.GOARCH)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build stage: %w", err)
	}
	return nil
}

// stageImage is the image of one final stage.
func stageImage(s *dockerfile.Stage, bin string) (v1.Image, error) {
	copies, err := s.Copies()
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, c := range copies {
		if c.From != "build" || !strings.HasPrefix(c.Src, "/out/") {
			return nil, fmt.Errorf("stage %s: COPY --from=%s %s: only files of the build stage's /out can be copied", s.Name, c.From, c.Src)
		}
		files[c.Dst] = filepath.Join(bin, strings.TrimPrefix(c.Src, "/out/"))
	}
	var cfg v1.Config
	for _, e := range s.Instructions("ENTRYPOINT") {
		if err := json.Unmarshal([]byte(e), &cfg.Entrypoint); err != nil {
			return nil, fmt.Errorf("stage %s: ENTRYPOINT %s is not in exec form: %w", s.Name, e, err)
		}
	}
	for _, u := range s.Instructions("USER") {
		cfg.User = u
	}
	for _, e := range s.Instructions("EXPOSE") {
		for _, p := range strings.Fields(e) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	return image(files, cfg)
}

// image is a one-layer linux image of files (path in the image -> file here) on the
// base files described in the package comment.
func image(files map[string]string, cfg v1.Config) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(path string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: mode, ModTime: epoch})
	}
	file := func(path string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs"} {
		if err := dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")); err != nil {
		return nil, err
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := file("etc/ssl/certs/ca-certificates.crt", 0o644, ca); err != nil {
			return nil, err
		}
		env = append(env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
	}
	for dst, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := file(strings.TrimPrefix(dst, "/"), 0o755, b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cfg.Env = env
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// write saves img as an image archive that `ctr images import` reads, named ref.
func write(img v1.Image, ref, path string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(os.Stderr, "image: %s -> %s\n", ref, path)
	return nil
}
