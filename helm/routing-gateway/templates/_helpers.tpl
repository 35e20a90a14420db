{{/* Chart name. */}}
{{- define "routing-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name. */}}
{{- define "routing-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "routing-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "routing-gateway.labels" -}}
helm.sh/chart: {{ include "routing-gateway.chart" . }}
{{ include "routing-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "routing-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "routing-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "routing-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "routing-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "routing-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "routing-gateway.simulatorName" -}}
{{- printf "%s-simulator" (include "routing-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The policy YAML the chart renders into its own ConfigMap, or "" when none. */}}
{{- define "routing-gateway.policyText" -}}
{{- if .Values.policy.existingConfigMap }}
{{- else if .Values.policy.inline }}
{{- .Values.policy.inline }}
{{- else if .Values.simulator.enabled }}
{{- tpl (.Files.Get "files/demo-policy.yaml") . }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap holding the policy, or "" to use the policy in the image. */}}
{{- define "routing-gateway.policyConfigMap" -}}
{{- if .Values.policy.existingConfigMap }}
{{- .Values.policy.existingConfigMap }}
{{- else if include "routing-gateway.policyText" . }}
{{- printf "%s-policy" (include "routing-gateway.fullname" .) }}
{{- end }}
{{- end }}
