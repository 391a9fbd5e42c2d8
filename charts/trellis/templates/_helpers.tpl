{{- define "trellis.name" -}}
{{- if eq .Values.revision "default" }}trellis{{ else }}trellis-{{ .Values.revision }}{{ end -}}
{{- end }}

{{- define "trellis.labels" -}}
app: trellis
istio.io/rev: {{ .Values.revision | quote }}
app.kubernetes.io/name: trellis
app.kubernetes.io/part-of: trellis
{{- end }}

{{- define "trellis.selector" -}}
app: trellis
istio.io/rev: {{ .Values.revision | quote }}
{{- end }}

{{- define "trellis.webhookPrefix" -}}
{{- if ne .Values.revision "default" }}rev.{{ end -}}
{{- end }}
