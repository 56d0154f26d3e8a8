package injector_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/faultline-dev/faultline/internal/podtest"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/testenv"
)

// kubelet copies the certificate Secret into dir whenever its data changes, as the
// kubelet does for a mounted Secret volume (which it does within a minute or so), until
// the test ends.
func kubelet(t testing.TB, cs kubernetes.Interface, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		var last []byte
		for ctx.Err() == nil {
			s, err := cs.CoreV1().Secrets(namespace).Get(ctx, secretName, metav1.GetOptions{})
			if err == nil && len(s.Data["tls.crt"]) > 0 && !bytes.Equal(s.Data["tls.crt"], last) {
				for _, f := range []string{"tls.key", "tls.crt"} {
					tmp := filepath.Join(dir, "."+f)
					if os.WriteFile(tmp, s.Data[f], 0o600) != nil || os.Rename(tmp, filepath.Join(dir, f)) != nil {
						return
					}
				}
				last = s.Data["tls.crt"]
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

// certEnv is an API server with the chart's webhook configuration (its CA bundle
// cleared, as the chart installs it), the empty certificate Secret the chart creates,
// and the namespaces of the tests.
func certEnv(t *testing.T) (*testenv.Env, admin, chart, testenv.Webhook) {
	t.Helper()
	testbin.Tool(t, "helm", "make tools installs it into bin/")
	env := testenv.StartWith(t, testenv.Options{CRDs: []string{crds}})
	a := newAdmin(t, env)
	a.namespace(t, namespace, nil)
	a.namespace(t, "shop", enabled)
	c := renderChart(t)
	wh := env.InstallWebhooks(t, c.webhooks)
	clearCABundle(t, a)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: namespace}, Type: corev1.SecretTypeOpaque}
	if _, err := a.cs.CoreV1().Secrets(namespace).Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return env, a, c, wh
}

// clearCABundle empties the CA bundle of the chart's webhook configuration, as the chart
// installs it and as helm upgrade writes it again.
func clearCABundle(t testing.TB, a admin) {
	t.Helper()
	mwc, err := a.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), webhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.CABundle = nil
	}
	if _, err := a.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(context.Background(), mwc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rotating are the injector's overrides for these tests: the API server reaches it as
// https://localhost:<port>, so the Service name the certificate carries is "localhost".
func rotating(listen, certDir string) []string {
	return []string{"--listen=" + listen, "--cert-dir=" + certDir, "--service-name=localhost"}
}

// TestCertificateRotation runs the injector as it runs in the chart by default: it makes
// a CA and a serving certificate in the Secret, patches the CA into its webhook
// configuration, and the API server then trusts it; a certificate thrown away is made
// again, and a CA bundle overwritten (as by helm upgrade) is patched back.
func TestCertificateRotation(t *testing.T) {
	env, a, c, wh := certEnv(t)
	rules, err := testenv.LoadInjectorRules(webhookName, secretName)
	if err != nil {
		t.Fatal(err)
	}
	user := env.AddUser(t, "faultline-injector")
	env.BindCluster(t, user.Name, "injector", append(append([]rbacv1.PolicyRule(nil), rules.Cluster...), rules.CertRotationCluster...))
	env.BindNamespace(t, user.Name, namespace, "injector-certs", rules.CertRotationNamespace)
	dir := t.TempDir()
	kubelet(t, a.cs, dir)
	inj := startInjector(t, c, user.Config, rotating(wh.Addr, dir)...)
	inj.waitReady(t)

	caPatched := func() error {
		s, err := a.cs.CoreV1().Secrets(namespace).Get(context.Background(), secretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mwc, err := a.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), webhookName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, w := range mwc.Webhooks {
			if len(s.Data["ca.crt"]) == 0 || !bytes.Equal(w.ClientConfig.CABundle, s.Data["ca.crt"]) {
				return fmt.Errorf("webhook %s: CA bundle is not the Secret's CA", w.Name)
			}
		}
		return nil
	}
	if err := caPatched(); err != nil {
		t.Fatal(err)
	}
	// injects creates pods until one gets the agent: the API server trusts the injector.
	n := 0
	injects := func(t *testing.T) {
		testbin.Eventually(t, 90*time.Second, func() error {
			n++
			pod, _ := a.createPod(t, appPod("shop", fmt.Sprintf("pod-%d", n)))
			return injected(pod)
		})
	}
	injects(t)

	t.Run("a CA bundle overwritten is patched back", func(t *testing.T) {
		clearCABundle(t, a)
		testbin.Eventually(t, 30*time.Second, caPatched)
		injects(t)
	})

	t.Run("a certificate thrown away is made again", func(t *testing.T) {
		s, err := a.cs.CoreV1().Secrets(namespace).Get(context.Background(), secretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		oldCA := s.Data["ca.crt"]
		s.Data = nil
		if _, err := a.cs.CoreV1().Secrets(namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		testbin.Eventually(t, 60*time.Second, func() error {
			s, err := a.cs.CoreV1().Secrets(namespace).Get(context.Background(), secretName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(s.Data["ca.crt"]) == 0 || bytes.Equal(s.Data["ca.crt"], oldCA) {
				return fmt.Errorf("no new CA in the Secret yet")
			}
			return caPatched()
		})
		injects(t)
	})
}

// TestEachRuleIsNeeded runs the injector (rotating its own certificate, so that every
// rule is used) as a user bound to the chart's rules minus one verb, for each verb of
// each rule in turn, and waits for the API server to refuse the injector exactly that:
// each verb is one the injector uses. TestInjection and TestCertificateRotation show the
// rules are enough.
func TestEachRuleIsNeeded(t *testing.T) {
	env, a, c, wh := certEnv(t)
	rules, err := testenv.LoadInjectorRules(webhookName, secretName)
	if err != nil {
		t.Fatal(err)
	}
	// What makes the injector use every rule: a profile whose status it keeps, and two
	// pods of one ReplicaSet it must refuse (one Event, then a patch counting it twice).
	a.profile(t, "shop", "web", "selector: {}")
	type verbRef struct {
		section string // cluster, certs (cluster-wide) or certs-ns
		rule    int
		verb    string
	}
	sections := map[string][]rbacv1.PolicyRule{"cluster": rules.Cluster, "certs": rules.CertRotationCluster, "certs-ns": rules.CertRotationNamespace}
	var all []verbRef
	for _, name := range []string{"cluster", "certs", "certs-ns"} {
		for i, r := range sections[name] {
			for _, v := range r.Verbs {
				all = append(all, verbRef{name, i, v})
			}
		}
	}
	for i, vr := range all {
		rule := sections[vr.section][vr.rule]
		t.Run(fmt.Sprintf("%s/%s/%s", vr.section, rule.Resources[0], vr.verb), func(t *testing.T) {
			if vr.verb == "list" {
				// client-go reads a watched set with one streaming watch where the API
				// server offers it (WatchList), and lists only where it does not.
				testenv.WithoutWatchList(t)
			}
			without := map[string][]rbacv1.PolicyRule{}
			for name, rs := range sections {
				for j, r := range rs {
					r = *r.DeepCopy()
					if name == vr.section && j == vr.rule {
						r.Verbs = slicesWithout(r.Verbs, vr.verb)
					}
					if len(r.Verbs) > 0 {
						without[name] = append(without[name], r)
					}
				}
			}
			user := env.AddUser(t, fmt.Sprintf("partial-%d", i))
			env.BindCluster(t, user.Name, "injector", append(without["cluster"], without["certs"]...))
			if len(without["certs-ns"]) > 0 {
				env.BindNamespace(t, user.Name, namespace, "injector-certs", without["certs-ns"])
			}
			// Each run starts from the chart's empty Secret, so the certificate is written.
			if s, err := a.cs.CoreV1().Secrets(namespace).Get(context.Background(), secretName, metav1.GetOptions{}); err == nil {
				s.Data = nil
				_, _ = a.cs.CoreV1().Secrets(namespace).Update(context.Background(), s, metav1.UpdateOptions{})
			}
			dir := t.TempDir()
			kubelet(t, a.cs, dir)
			var refused refusals
			inj := startInjector(t, c, refused.wrap(user.Config), rotating(wh.Addr, dir)...)
			inj.brokenStop = true
			want := vr.verb + " " + rule.Resources[0]
			triggered := false
			testbin.Eventually(t, 45*time.Second, func() error {
				if refused.has(want) {
					return nil
				}
				inj.exited(t)
				if !triggered && inj.ready() {
					triggered = true
					rs := fmt.Sprintf("rs-%d", i)
					for range 2 {
						a.createPod(t, appPod("shop", "", podtest.Annotate("faultline.dev/sample-interval", "fast"), ownedBy(rs)))
					}
				}
				return fmt.Errorf("the API server refused the injector %q, not %q", refused.list(), want)
			})
		})
	}
}

func slicesWithout(s []string, v string) []string {
	var out []string
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
