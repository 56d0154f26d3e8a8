package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/faultline-dev/faultline/internal/testbin"
)

// RulesFile is the RBAC rules file the Helm chart renders, relative to the repository.
const RulesFile = "charts/faultline/files/rbac-rules.yaml"

// Rules are the aggregator's API rights, as written in RulesFile.
type Rules struct {
	// Discovery is granted in every watched namespace (or cluster-wide).
	Discovery []rbacv1.PolicyRule `json:"discovery"`
	// LeaderElection is granted in the aggregator's own namespace.
	LeaderElection []rbacv1.PolicyRule `json:"leaderElection"`
}

// LoadRules reads RulesFile; unknown keys are an error so that the file and this type
// cannot drift apart.
func LoadRules() (Rules, error) {
	raw, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), RulesFile))
	if err != nil {
		return Rules{}, fmt.Errorf("read rbac rules: %w", err)
	}
	var r Rules
	if err := yaml.UnmarshalStrict(raw, &r); err != nil {
		return Rules{}, fmt.Errorf("parse %s: %w", RulesFile, err)
	}
	if len(r.Discovery) == 0 || len(r.LeaderElection) == 0 {
		return Rules{}, fmt.Errorf("%s: discovery and leaderElection must both list rules", RulesFile)
	}
	return r, nil
}

// Scope says where BindRules grants the rules, the way the chart does.
type Scope struct {
	// Namespaces gets the discovery rules as a Role and RoleBinding in each namespace;
	// empty means one ClusterRole and ClusterRoleBinding (all namespaces).
	Namespaces []string
	// LeaseNamespace gets the leader-election rules as a Role and RoleBinding; empty
	// grants none.
	LeaseNamespace string
}

// BindRules grants user exactly the rules of RulesFile, in scope. Namespaces must exist.
func (e *Env) BindRules(t testing.TB, user string, scope Scope) {
	t.Helper()
	rules, err := LoadRules()
	if err != nil {
		t.Fatal(err)
	}
	e.Bind(t, user, rules, scope)
}

// Bind grants user the given rules in scope: BindRules with rules of the test's choosing,
// for example to show that dropping one rule breaks something.
func (e *Env) Bind(t testing.TB, user string, rules Rules, scope Scope) {
	t.Helper()
	if len(rules.Discovery) > 0 {
		if len(scope.Namespaces) == 0 {
			e.BindCluster(t, user, "discovery", rules.Discovery)
		}
		for _, ns := range scope.Namespaces {
			e.BindNamespace(t, user, ns, "discovery", rules.Discovery)
		}
	}
	if scope.LeaseNamespace != "" && len(rules.LeaderElection) > 0 {
		e.BindNamespace(t, user, scope.LeaseNamespace, "leader-election", rules.LeaderElection)
	}
}

// BindCluster grants user rules in every namespace (a ClusterRole and binding named
// after user and name).
func (e *Env) BindCluster(t testing.TB, user, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	rbac := e.Client.RbacV1()
	meta := metav1.ObjectMeta{Name: mustName(user, name)}
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrole %s: %v", meta.Name, err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: userSubject(user),
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: meta.Name}}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrolebinding %s: %v", meta.Name, err)
	}
}

// BindNamespace grants user rules in namespace ns (a Role and binding named after user
// and name). The namespace must exist.
func (e *Env) BindNamespace(t testing.TB, user, ns, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	rbac := e.Client.RbacV1()
	meta := metav1.ObjectMeta{Name: mustName(user, name), Namespace: ns}
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role %s/%s: %v", ns, meta.Name, err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: userSubject(user),
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name}}
	if _, err := rbac.RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding %s/%s: %v", ns, meta.Name, err)
	}
}

func userSubject(user string) []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
}

// InjectorRulesFile is the injector's RBAC rules file the Helm chart renders, relative to
// the repository.
const InjectorRulesFile = "charts/faultline/files/injector-rbac-rules.yaml"

// InjectorRules are the injector's API rights, as written in InjectorRulesFile.
type InjectorRules struct {
	// Cluster is granted in every namespace.
	Cluster []rbacv1.PolicyRule `json:"cluster"`
	// CertRotationCluster and CertRotationNamespace (in the injector's namespace) are
	// granted when the injector keeps its own certificate.
	CertRotationCluster   []rbacv1.PolicyRule `json:"certRotationCluster"`
	CertRotationNamespace []rbacv1.PolicyRule `json:"certRotationNamespace"`
}

// LoadInjectorRules reads InjectorRulesFile with the names the chart puts in: the
// webhook configuration and the certificate Secret. Unknown keys are an error.
func LoadInjectorRules(webhookConfiguration, certificateSecret string) (InjectorRules, error) {
	raw, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), InjectorRulesFile))
	if err != nil {
		return InjectorRules{}, fmt.Errorf("read injector rbac rules: %w", err)
	}
	text := strings.NewReplacer("<webhook-configuration>", webhookConfiguration, "<certificate-secret>", certificateSecret).Replace(string(raw))
	var r InjectorRules
	if err := yaml.UnmarshalStrict([]byte(text), &r); err != nil {
		return InjectorRules{}, fmt.Errorf("parse %s: %w", InjectorRulesFile, err)
	}
	if len(r.Cluster) == 0 || len(r.CertRotationCluster) == 0 || len(r.CertRotationNamespace) == 0 {
		return InjectorRules{}, fmt.Errorf("%s: cluster, certRotationCluster and certRotationNamespace must all list rules", InjectorRulesFile)
	}
	return r, nil
}
