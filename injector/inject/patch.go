package inject

import (
	"maps"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// Patch is the JSON patch (RFC 6902) that turns pod into r.Pod, written from what the
// injector changes alone: labels and annotations it sets or removes, the shared process
// namespace and the agent's init container. Nothing else of the pod is touched, so
// fields this build does not know (a newer API server's) survive admission, and the
// patch costs no round trip of the whole pod. Empty when r has no pod.
func Patch(pod *corev1.Pod, r Result) []jsonpatch.Operation {
	if r.Pod == nil {
		return nil
	}
	var ops []jsonpatch.Operation
	ops = appendMap(ops, "/metadata/labels", pod.Labels, r.Pod.Labels)
	ops = appendMap(ops, "/metadata/annotations", pod.Annotations, r.Pod.Annotations)
	if share := r.Pod.Spec.ShareProcessNamespace; share != nil && (pod.Spec.ShareProcessNamespace == nil || *pod.Spec.ShareProcessNamespace != *share) {
		ops = append(ops, jsonpatch.NewOperation("add", "/spec/shareProcessNamespace", *share))
	}
	if added := len(r.Pod.Spec.InitContainers) - len(pod.Spec.InitContainers); added == 1 {
		if len(pod.Spec.InitContainers) == 0 {
			ops = append(ops, jsonpatch.NewOperation("add", "/spec/initContainers", r.Pod.Spec.InitContainers))
		} else {
			ops = append(ops, jsonpatch.NewOperation("add", "/spec/initContainers/0", r.Pod.Spec.InitContainers[0]))
		}
	}
	return ops
}

// appendMap adds the operations that turn the string map at path from old into new.
func appendMap(ops []jsonpatch.Operation, path string, old, new map[string]string) []jsonpatch.Operation {
	if len(old) == 0 {
		if len(new) > 0 {
			ops = append(ops, jsonpatch.NewOperation("add", path, new))
		}
		return ops
	}
	for _, k := range slices.Sorted(maps.Keys(new)) {
		if v, ok := old[k]; !ok || v != new[k] {
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+escape(k), new[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(old)) {
		if _, ok := new[k]; !ok {
			ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+escape(k), nil))
		}
	}
	return ops
}

// escape makes a map key one JSON pointer token (RFC 6901).
func escape(s string) string { return pointerEscaper.Replace(s) }

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
