{{/*
faultline.validate fails the render on combinations of values that the schema cannot
express and that would install something that does not work. Each message names the
values involved and what to change.
*/}}
{{- define "faultline.validate" -}}
{{- $agg := .Values.aggregator -}}
{{- if $agg.enabled -}}
{{- if and (eq $agg.mode "static") (not $agg.agents) -}}
{{- fail "faultline: aggregator.mode is \"static\" but aggregator.agents is empty: list the agent URLs (e.g. http://10.0.0.7:9800), or use mode \"kubernetes\" to find agents by label" -}}
{{- end -}}
{{- if and (eq $agg.mode "kubernetes") $agg.agents -}}
{{- fail "faultline: aggregator.agents is only used with aggregator.mode \"static\": remove aggregator.agents, or set aggregator.mode to \"static\"" -}}
{{- end -}}
{{- if and (eq $agg.mode "static") $agg.watchNamespaces -}}
{{- fail "faultline: aggregator.watchNamespaces is only used with aggregator.mode \"kubernetes\": remove it, or set aggregator.mode to \"kubernetes\"" -}}
{{- end -}}
{{- end -}}
{{- if hasKey .Values.demo "replicas" -}}
{{- fail "faultline: demo.replicas is gone: the demo is five services (frontend, checkout, payments, inventory, shipping), each with its own demo.services.<name>.replicas, e.g. --set demo.services.frontend.replicas=3" -}}
{{- end -}}
{{- if and .Values.demo.enabled $agg.enabled (eq $agg.mode "static") -}}
{{- fail "faultline: demo.enabled needs aggregator.mode \"kubernetes\": the demo pods are found through the Kubernetes API" -}}
{{- end -}}
{{- if and .Values.demo.enabled $agg.watchNamespaces (not (has .Release.Namespace $agg.watchNamespaces)) -}}
{{- fail (printf "faultline: demo.enabled runs the demo in the release namespace %q, which aggregator.watchNamespaces %v leaves out: add %q to aggregator.watchNamespaces" .Release.Namespace $agg.watchNamespaces .Release.Namespace) -}}
{{- end -}}
{{- if and $agg.podDisruptionBudget.enabled (lt (int $agg.replicas) 2) -}}
{{- fail "faultline: aggregator.podDisruptionBudget.enabled needs aggregator.replicas of 2 or more: with one replica the budget blocks every node drain" -}}
{{- end -}}
{{- if and $agg.podDisruptionBudget.enabled (ge (int $agg.podDisruptionBudget.minAvailable) (int $agg.replicas)) -}}
{{- fail (printf "faultline: aggregator.podDisruptionBudget.minAvailable (%d) must be below aggregator.replicas (%d), or no aggregator pod may ever be evicted" (int $agg.podDisruptionBudget.minAvailable) (int $agg.replicas)) -}}
{{- end -}}
{{- if and $agg.ingress.enabled (not $agg.ingress.host) -}}
{{- fail "faultline: aggregator.ingress.enabled needs aggregator.ingress.host, the name users open the dashboard by (the aggregator refuses requests naming another host)" -}}
{{- end -}}
{{- if and $agg.service.nodePort (eq $agg.service.type "ClusterIP") -}}
{{- fail "faultline: aggregator.service.nodePort is set but aggregator.service.type is ClusterIP: set the type to NodePort or LoadBalancer, or set nodePort to 0" -}}
{{- end -}}
{{- $inj := .Values.injector -}}
{{- if and $inj.enabled $agg.enabled (eq $agg.mode "static") -}}
{{- fail "faultline: injector.enabled adds agents that only aggregator.mode \"kubernetes\" finds: set injector.enabled=false with mode \"static\"" -}}
{{- end -}}
{{- if and $inj.enabled $inj.podDisruptionBudget.enabled (lt (int $inj.replicas) 2) -}}
{{- fail "faultline: injector.podDisruptionBudget.enabled needs injector.replicas of 2 or more: with one replica the budget blocks every node drain" -}}
{{- end -}}
{{- if and $inj.enabled $inj.podDisruptionBudget.enabled (ge (int $inj.podDisruptionBudget.minAvailable) (int $inj.replicas)) -}}
{{- fail (printf "faultline: injector.podDisruptionBudget.minAvailable (%d) must be below injector.replicas (%d), or no injector pod may ever be evicted" (int $inj.podDisruptionBudget.minAvailable) (int $inj.replicas)) -}}
{{- end -}}
{{- if and $inj.enabled $inj.certManager.issuerRef (not $inj.certManager.enabled) -}}
{{- fail "faultline: injector.certManager.issuerRef is only used with injector.certManager.enabled: set it to true, or remove the issuerRef" -}}
{{- end -}}
{{- if and $inj.certManager.issuerRef (not $inj.certManager.issuerRef.name) -}}
{{- fail "faultline: injector.certManager.issuerRef needs a name (and kind Issuer or ClusterIssuer)" -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "faultline: serviceAccount.create is false, so serviceAccount.name must name an existing ServiceAccount for the aggregator" -}}
{{- end -}}
{{- if and $agg.serviceMonitor.enabled (gt (include "faultline.seconds" $agg.serviceMonitor.scrapeTimeout | float64) (include "faultline.seconds" $agg.serviceMonitor.interval | float64)) -}}
{{- fail (printf "faultline: aggregator.serviceMonitor.scrapeTimeout (%s) must not exceed aggregator.serviceMonitor.interval (%s)" $agg.serviceMonitor.scrapeTimeout $agg.serviceMonitor.interval) -}}
{{- end -}}
{{- end -}}

{{/*
faultline.seconds turns a Prometheus duration made of h, m, s and ms parts (the schema
allows only those) into seconds, for comparing durations.
*/}}
{{- define "faultline.seconds" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 -}}
{{- $n := regexFind "^[0-9]+" . | float64 -}}
{{- $unit := regexReplaceAll "^[0-9]+" . "" -}}
{{- if eq $unit "h" }}{{ $total = addf $total (mulf $n 3600) }}{{ end -}}
{{- if eq $unit "m" }}{{ $total = addf $total (mulf $n 60) }}{{ end -}}
{{- if eq $unit "s" }}{{ $total = addf $total $n }}{{ end -}}
{{- if eq $unit "ms" }}{{ $total = addf $total (divf $n 1000) }}{{ end -}}
{{- end -}}
{{- $total -}}
{{- end -}}
