{{- define "gateway.name" -}}{{ default .Release.Name .Values.name }}{{- end }}
{{- define "gateway.xds" -}}
{{- if eq .Values.revision "default" }}trellis{{ else }}trellis-{{ .Values.revision }}{{ end }}.{{ .Values.controlPlaneNamespace }}.svc:15010
{{- end }}
{{- define "gateway.selector" -}}
app: {{ include "gateway.name" . }}
{{- range $k, $v := .Values.labels }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- if .Values.gatewayName }}
gateway.networking.k8s.io/gateway-name: {{ .Values.gatewayName }}
{{- end }}
{{- end }}
{{- define "gateway.labels" -}}
{{ include "gateway.selector" . }}
istio.io/rev: {{ .Values.revision | quote }}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/part-of: trellis
{{- end }}
