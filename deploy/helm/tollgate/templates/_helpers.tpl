{{/* Names and labels shared by every Tollgate object. */}}
{{- define "tollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tollgate.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tollgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Environment of every role: settings, then secrets by key (required ones fail the pod). */}}
{{- define "tollgate.env" -}}
- name: TOLLGATE_ENV
  value: production
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: ALLOWED_HOSTS
  value: {{ printf "%s,$(POD_IP)" (join "," .Values.allowedHosts) | quote }}
{{- with .Values.csrfTrustedOrigins }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range .Values.requiredSecretKeys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.existingSecret }}
      key: {{ . }}
{{- end }}
{{- range .Values.optionalSecretKeys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.existingSecret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end -}}

{{- define "tollgate.envFrom" -}}
{{- range .Values.extraSecretRefs }}
- secretRef:
    name: {{ . }}
{{- end }}
{{- end -}}

{{/* /tmp is the only writable path (metrics multiprocess files, export spool). */}}
{{- define "tollgate.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "tollgate.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}
