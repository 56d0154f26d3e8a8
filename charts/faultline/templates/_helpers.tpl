{{/*
faultline.name is the chart name, or nameOverride.
*/}}
{{- define "faultline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
faultline.fullname prefixes every object: fullnameOverride, else the release name, with
the chart name appended unless the release name already contains it.
*/}}
{{- define "faultline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
faultline.labels are the labels of every object; call with (dict "root" $ "component" "x").
*/}}
{{- define "faultline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "faultline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: faultline
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
faultline.selectorLabels select one component's pods; they never change between upgrades.
*/}}
{{- define "faultline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faultline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
faultline.serviceAccountName is the aggregator's ServiceAccount.
*/}}
{{- define "faultline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "faultline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
faultline.image renders an image reference from (dict "image" .Values.x.image "root" $):
repository:tag@digest, repository@digest, repository:tag, or repository:appVersion when
neither is set. Never "latest".
*/}}
{{- define "faultline.image" -}}
{{- if and .image.digest .image.tag -}}
{{- printf "%s:%s@%s" .image.repository .image.tag .image.digest -}}
{{- else if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
faultline.agentSelector renders aggregator.agentSelector as a label selector (k=v,k2=v2),
the form of the aggregator's agent-selector setting.
*/}}
{{- define "faultline.agentSelector" -}}
{{- $parts := list -}}
{{- range $k, $v := .Values.aggregator.agentSelector -}}
{{- $parts = append $parts (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $parts -}}
{{- end -}}

{{/*
faultline.agentLabels are the labels that make the aggregator watch a pod for an agent. Put
them on the pod template of every workload that includes faultline.agentSidecar. Called
with this chart's root context they follow aggregator.agentSelector; from any other chart
(whose values have no aggregator.agentSelector) they are the default faultline.dev/agent: "true".
*/}}
{{- define "faultline.agentLabels" -}}
{{- $selector := dict "faultline.dev/agent" "true" -}}
{{- if and (kindIs "map" .) (hasKey . "Values") -}}
{{- with .Values.aggregator -}}
{{- if and (kindIs "map" .) .agentSelector -}}
{{- $selector = .agentSelector -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $selector -}}
{{- end -}}

{{/*
faultline.allowedHosts lists, as YAML, the host names the aggregator answers to besides
localhost and IP addresses: the Service's names in every form a client in the cluster
uses, the Ingress host, and aggregator.allowedHosts.
*/}}
{{- define "faultline.allowedHosts" -}}
{{- $svc := include "faultline.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.aggregator.clusterDomain) -}}
{{- with .Values.aggregator.ingress -}}
{{- if and .enabled .host -}}
{{- $hosts = append $hosts .host -}}
{{- end -}}
{{- end -}}
{{- toYaml (concat $hosts .Values.aggregator.allowedHosts) -}}
{{- end -}}

{{/*
faultline.demoName is the name of a demo service's Deployment and Service, from
(dict "root" $ "role" "payments"): <fullname>-demo-<role>, the full name shortened so
that every one fits a Service name (63 characters).
*/}}
{{- define "faultline.demoName" -}}
{{- printf "%s-demo-%s" (include "faultline.fullname" .root | trunc 48 | trimSuffix "-") .role -}}
{{- end -}}

{{/*
faultline.demoLabels are the labels of a demo service's objects and pods, from
(dict "root" $ "role" "payments"): component demo for every service, and
faultline.dev/demo-role naming the service.
*/}}
{{- define "faultline.demoLabels" -}}
{{ include "faultline.labels" (dict "root" .root "component" "demo") }}
faultline.dev/demo-role: {{ .role }}
{{- end -}}

{{/*
faultline.demoSelectorLabels select the pods of one demo service.
*/}}
{{- define "faultline.demoSelectorLabels" -}}
{{ include "faultline.selectorLabels" (dict "root" .root "component" "demo") }}
faultline.dev/demo-role: {{ .role }}
{{- end -}}

{{/*
faultline.demoAgentEnv is the demo sidecars' extra env (a YAML list): the token the
aggregator sends for a cluster-wide cleanup, when one is configured.
*/}}
{{- define "faultline.demoAgentEnv" -}}
{{- with .Values.aggregator.agentToken.existingSecret }}
# The demo's agents accept the token the aggregator sends for a cluster-wide cleanup.
- name: FAULTLINE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.aggregator.agentToken.key }}
{{- else -}}
[]
{{- end }}
{{- end }}

{{/*
faultline.agentSidecar is the agent as a native sidecar: an init container with
restartPolicy: Always, so it starts before the application, runs beside it for the pod's
whole life and does not keep a Job's pod alive. Include it under initContainers:

  initContainers:
    {{- include "faultline.agentSidecar" (dict "container" "app" "image" "ghcr.io/faultline-dev/faultline-agent:0.1.0") | nindent 4 }}

Parameters (a dict):
  container        required: name of the application container whose CPU and memory
                   limits the agent reports usage against (resourceFieldRef)
  image            required: the agent image reference
  imagePullPolicy  optional, default IfNotPresent
  port             optional, default 9800: the read API, stream and probes (port name faultline)
  workload         optional: the workload name the agent reports (the aggregator also
                   derives it from the pod's owner)
  sampleInterval   optional: FAULTLINE_SAMPLE_INTERVAL, e.g. 1s
  logLevel         optional: FAULTLINE_LOG_LEVEL
  env              optional: extra env entries (e.g. FAULTLINE_PROMETHEUS_URL)
  allowedHosts     optional: host names (a list) the agent answers to besides localhost
                   and IP addresses (FAULTLINE_ALLOWED_HOSTS), e.g. a Service name
                   that static-mode aggregators use
  resources        optional: the sidecar's resources

The pod needs shareProcessNamespace: true for pod-level process metrics (mode pod); the
pod must also carry faultline.agentLabels.
*/}}
{{- define "faultline.agentSidecar" -}}
{{- if not (kindIs "map" .) -}}
{{- fail "faultline.agentSidecar: call it with a dict, e.g. (dict \"container\" \"app\" \"image\" \"ghcr.io/faultline-dev/faultline-agent:0.1.0\")" -}}
{{- end -}}
{{- if not .container -}}
{{- fail "faultline.agentSidecar: set \"container\" to the name of the application container whose limits the agent reports against" -}}
{{- end -}}
{{- if not .image -}}
{{- fail "faultline.agentSidecar: set \"image\" to the agent image, e.g. ghcr.io/faultline-dev/faultline-agent:0.1.0" -}}
{{- end -}}
{{- $port := int (default 9800 .port) -}}
- name: faultline-agent
  image: {{ .image }}
  imagePullPolicy: {{ default "IfNotPresent" .imagePullPolicy }}
  restartPolicy: Always
  ports:
    - name: faultline
      containerPort: {{ $port }}
      protocol: TCP
  env:
    - name: FAULTLINE_LISTEN
      value: {{ printf ":%d" $port | quote }}
    {{- with .workload }}
    - name: FAULTLINE_WORKLOAD
      value: {{ . | quote }}
    {{- end }}
    {{- with .sampleInterval }}
    - name: FAULTLINE_SAMPLE_INTERVAL
      value: {{ . | quote }}
    {{- end }}
    {{- with .logLevel }}
    - name: FAULTLINE_LOG_LEVEL
      value: {{ . | quote }}
    {{- end }}
    {{- with .allowedHosts }}
    - name: FAULTLINE_ALLOWED_HOSTS
      value: {{ join "," . | quote }}
    {{- end }}
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    - name: NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: FAULTLINE_CPU_LIMIT_MILLICORES
      valueFrom:
        resourceFieldRef:
          containerName: {{ .container }}
          resource: limits.cpu
          divisor: 1m
    - name: FAULTLINE_MEMORY_LIMIT_BYTES
      valueFrom:
        resourceFieldRef:
          containerName: {{ .container }}
          resource: limits.memory
          divisor: "1"
    {{- with .env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  # The application starts once the agent has its first sample (native sidecars start
  # in order, each after its startupProbe succeeds), so it sees the application's
  # first breaker transitions.
  startupProbe:
    httpGet:
      path: /readyz
      port: faultline
    periodSeconds: 1
    failureThreshold: 30
  readinessProbe:
    httpGet:
      path: /readyz
      port: faultline
    periodSeconds: 5
  livenessProbe:
    httpGet:
      path: /healthz
      port: faultline
    periodSeconds: 10
    failureThreshold: 3
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    capabilities:
      drop: [ALL]
    seccompProfile:
      type: RuntimeDefault
{{- end -}}

{{/*
faultline.injectorName is the name of the injector's objects: <fullname>-injector.
*/}}
{{- define "faultline.injectorName" -}}
{{- printf "%s-injector" (include "faultline.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/*
faultline.injectorWebhookName is the injector's MutatingWebhookConfiguration, cluster-scoped
and so named with the release namespace (two releases may share a name).
*/}}
{{- define "faultline.injectorWebhookName" -}}
{{- printf "%s-%s" .Release.Namespace (include "faultline.injectorName" .) | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/*
faultline.injectorExcluded are the namespaces never injected: kube-system, kube-public,
the release's own and injector.excludeNamespaces.
*/}}
{{- define "faultline.injectorExcluded" -}}
{{- toYaml (concat (list "kube-system" "kube-public" .Release.Namespace) .Values.injector.excludeNamespaces | uniq) -}}
{{- end -}}

{{/*
faultline.injectionTemplate is what the injector adds to a pod, as a pod template: the
labels the aggregator selects agents by, the shared process namespace, and the agent as
a native sidecar rendered by faultline.agentSidecar from the agent.* values, exactly as a
user's chart would include it, with "<app-container>" for the application container
the injector picks per pod. The injector reads it from its ConfigMap at start.
*/}}
{{- define "faultline.injectionTemplate" -}}
metadata:
  labels:
    {{- include "faultline.agentLabels" . | nindent 4 }}
spec:
  shareProcessNamespace: true
  initContainers:
    {{- include "faultline.agentSidecar" (dict
          "container" "<app-container>"
          "image" (include "faultline.image" (dict "image" .Values.agent.image "root" .))
          "imagePullPolicy" .Values.agent.image.pullPolicy
          "sampleInterval" .Values.agent.sampleInterval
          "logLevel" .Values.agent.logLevel
          "resources" .Values.agent.resources) | nindent 4 }}
{{- end -}}
