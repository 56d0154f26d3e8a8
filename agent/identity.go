package agent

import (
	"os"
	"strings"
	"time"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/version"
	"github.com/faultline-dev/faultline/internal/wire"
)

// identify builds the agent's identity from the Downward API environment (POD_NAME,
// POD_NAMESPACE, POD_UID, NODE_NAME, POD_IP) or, outside Kubernetes, the host name.
func identify(cfg config.Agent, getenv func(string) string, hostname func() (string, error), started time.Time) wire.Agent {
	id := wire.Agent{
		V:         wire.Version,
		Pod:       getenv("POD_NAME"),
		Namespace: getenv("POD_NAMESPACE"),
		UID:       getenv("POD_UID"),
		Node:      getenv("NODE_NAME"),
		IP:        getenv("POD_IP"),
		Workload:  cfg.Workload,
		Version:   version.Version,
		Mode:      cfg.Mode,
		Started:   wire.NewTime(started),
	}
	switch {
	case id.Pod != "" && id.Namespace != "":
		id.ID = id.Namespace + "/" + id.Pod
	case id.Pod != "":
		id.ID = id.Pod
	default:
		host, err := hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		id.ID = host
		if id.Node == "" {
			id.Node = host
		}
	}
	if id.Workload == "" && id.Pod != "" {
		id.Workload = workloadOf(id.Pod)
	}
	return id
}

// hostname is os.Hostname, replaceable in tests.
var hostname = os.Hostname

// nameAlphabet is the alphabet of the random and hash suffixes Kubernetes puts in pod
// names (k8s.io/apimachinery/pkg/util/rand): no vowels, no 0, 1 or 3.
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// workloadOf guesses the workload from a pod name, for when --workload is not set:
// Deployment pods are <name>-<template hash>-<5 random>, DaemonSet and Job pods
// <name>-<5 random>, CronJob pods <name>-<minutes>-<5 random>, StatefulSet pods
// <name>-<ordinal>. A name that fits none of these is its own workload.
func workloadOf(pod string) string {
	parts := strings.Split(pod, "-")
	last := func() string { return parts[len(parts)-1] }
	if len(parts) >= 2 && len(last()) == 5 && inAlphabet(last()) {
		parts = parts[:len(parts)-1]
		if len(parts) >= 2 && (isTemplateHash(last()) || isDigits(last()) && len(last()) >= 8) {
			parts = parts[:len(parts)-1]
		}
		return strings.Join(parts, "-")
	}
	if len(parts) >= 2 && isDigits(last()) {
		return strings.Join(parts[:len(parts)-1], "-")
	}
	return pod
}

func isTemplateHash(s string) bool { return len(s) >= 6 && len(s) <= 10 && inAlphabet(s) }

func inAlphabet(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune(nameAlphabet, c) {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
