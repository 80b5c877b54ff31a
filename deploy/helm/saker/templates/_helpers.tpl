{{/* Labels on every object. No chart version or Helm-managed labels: the default render
     must stay equal to deploy/daemonset.yaml. */}}
{{- define "saker.labels" -}}
app.kubernetes.io/name: saker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end }}

{{- define "saker.selectorLabels" -}}
app.kubernetes.io/name: saker
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "saker.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* TOML array items: the image's default rules, the ConfigMap's local rules, then
     extraRules in name order. */}}
{{- define "saker.rulePaths" -}}
"/etc/saker/rules/saker_rules.yaml", "/etc/saker/k8s/local_rules.yaml"
{{- range $name, $_ := .Values.extraRules }}, "/etc/saker/k8s/{{ $name }}"{{ end }}
{{- end }}

{{/* `saker node` over the unix socket: exit 0 only when the daemon answered. */}}
{{- define "saker.probeCommand" -}}
- saker
- --socket=/run/saker/saker.sock
- --timeout=3s
{{- if .Values.api.tokenSecret }}
- --token-file=/etc/saker-token/token
{{- end }}
- node
{{- end }}
