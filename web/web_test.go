package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestHandlerHeaders checks the security headers on the pages and the assets.
func TestHandlerHeaders(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, p := range []string{"/", "/test-realtime.html", "/js/dashboard.js", "/css/dashboard.css"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy %q must allow only same-origin scripts", p, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", p, got)
		}
		if strings.HasSuffix(p, ".js") && !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
			t.Errorf("GET %s: Content-Type %q; browsers refuse modules of another type", p, resp.Header.Get("Content-Type"))
		}
	}
}

// Directories are not listed: the dashboard's files are served, not browsed.
func TestNoDirectoryListings(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, p := range []string{"/js/", "/js", "/css/", "/js/components/", "/css/../js/"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "<a href") {
			t.Errorf("GET %s: %d %.200s; want 404 without a listing", p, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<script") {
		t.Errorf("GET /: %d, want the dashboard page", resp.StatusCode)
	}
}

var (
	inlineScript  = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	inlineStyle   = regexp.MustCompile(`(?i)<style\b|\sstyle\s*=`)
	inlineHandler = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	unsafeJS      = regexp.MustCompile(`\.innerHTML\b|\.outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setAttribute\(\s*'style'`)
	importRE      = regexp.MustCompile(`(?m)^\s*import\b[^'"]*['"]([^'"]+)['"]|new URL\('([^']+)', import\.meta\.url\)`)
	srcRE         = regexp.MustCompile(`(?i)(?:src|href)="([^"]+)"`)
)

// TestStaticFilesRespectCSP checks the embedded files against what the policy forbids
// (inline script, inline style, inline handlers), that scripts never build markup from
// strings (server data must not become markup), and that every import and every local
// src/href names a file that is embedded: there is no build step to catch a typo.
func TestStaticFilesRespectCSP(t *testing.T) {
	sub, _ := fs.Sub(files, "static")
	exists := func(p string) bool {
		_, err := fs.Stat(sub, strings.TrimPrefix(p, "/"))
		return err == nil
	}
	var pages, modules int
	err := fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		text := string(b)
		switch path.Ext(p) {
		case ".html":
			pages++
			for _, re := range []*regexp.Regexp{inlineScript, inlineStyle, inlineHandler} {
				if m := re.FindString(text); m != "" {
					t.Errorf("%s: %q is blocked by the Content Security Policy", p, m)
				}
			}
			for _, m := range srcRE.FindAllStringSubmatch(text, -1) {
				ref := m[1]
				if strings.Contains(ref, "://") || strings.HasPrefix(ref, "#") || ref == "./" {
					continue
				}
				if !exists(path.Join(path.Dir(p), ref)) {
					t.Errorf("%s refers to %s, which is not embedded", p, ref)
				}
			}
		case ".js":
			modules++
			if m := unsafeJS.FindString(text); m != "" {
				t.Errorf("%s uses %q: build elements with textContent instead", p, m)
			}
			for _, m := range importRE.FindAllStringSubmatch(text, -1) {
				ref := m[1] + m[2]
				if !exists(path.Join(path.Dir(p), ref)) {
					t.Errorf("%s imports %s, which is not embedded", p, ref)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages < 2 || modules < 10 {
		t.Errorf("found %d pages and %d modules; the embed is missing files", pages, modules)
	}
}
