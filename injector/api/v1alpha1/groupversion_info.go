// Package v1alpha1 is the faultline.dev/v1alpha1 API: AgentProfile, which selects pods by
// label and says what their agent does, and the pod annotations the injector reads and
// writes. The CRD in charts/faultline/crds is generated from these types (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=faultline.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is faultline.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "faultline.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this version with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AgentProfile{}, &AgentProfileList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
