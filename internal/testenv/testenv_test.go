package testenv

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/faultline-dev/faultline/internal/testbin"
)

func TestLoadRules(t *testing.T) {
	r, err := LoadRules()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Discovery) == 0 || len(r.LeaderElection) == 0 {
		t.Fatalf("rules file lost a section: %+v", r)
	}
}

// TestUserRightsAndRestart checks the harness itself: a new user has no rights, BindRules
// grants pod reads only in the namespaces asked for, the user's kubeconfig file works, and
// both survive an API server restart.
func TestUserRightsAndRestart(t *testing.T) {
	env := Start(t)
	env.CreateNamespace(t, "shop")
	env.CreateNamespace(t, "other")
	u := env.AddUser(t, "reader")

	kc, err := clientcmd.BuildConfigFromFlags("", u.Kubeconfig)
	if err != nil {
		t.Fatalf("load user kubeconfig: %v", err)
	}
	cs, err := kubernetes.NewForConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	list := func(ns string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err
	}
	if err := list("shop"); !apierrors.IsForbidden(err) {
		t.Fatalf("unbound user listing pods: got %v, want forbidden", err)
	}

	env.BindRules(t, u.Name, Scope{Namespaces: []string{"shop"}, LeaseNamespace: "shop"})
	testbin.Eventually(t, 10*time.Second, func() error { return list("shop") })
	if err := list("other"); !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods outside the bound namespace: got %v, want forbidden", err)
	}

	env.StopAPIServer(t)
	if err := list("shop"); err == nil {
		t.Fatal("list succeeded with the API server stopped")
	}
	env.StartAPIServer(t)
	testbin.Eventually(t, 30*time.Second, func() error { return list("shop") })
}
