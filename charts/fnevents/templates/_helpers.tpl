{{/*
Names, labels, and the one Deployment definition that the all-in-one Deployment and every
per-role Deployment are made from. Nothing here derives a topic, group, stream or
Service name from a manifest: per-role names come from `.Values.roles`, which
`fnevents render --helm-values` writes.
*/}}

{{- define "fnevents.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: the release name, or "<release>-fnevents". */}}
{{- define "fnevents.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "fnevents.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A role's object name: "<fullname>-<suffix>", the suffix as render wrote it. Never cut: a
cut name would no longer be the one render put into other roles' URLs.
*/}}
{{- define "fnevents.roleName" -}}
{{- $name := printf "%s-%s" (include "fnevents.fullname" .root) .suffix -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "roles: the object name %q is longer than 63 characters; use a shorter release name or fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "fnevents.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fnevents.manifestsConfigMap" -}}
{{- default (printf "%s-manifests" (include "fnevents.fullname" .)) .Values.manifests.existingConfigMap -}}
{{- end -}}

{{- define "fnevents.secretName" -}}
{{- printf "%s-secrets" (include "fnevents.fullname" .) -}}
{{- end -}}

{{/*
Selector labels: which fnevents pods (name, instance) and, with `role`, one Deployment's
pods (fnevents.dev/role: the role's suffix as render wrote it, as render's objects have).
Takes root and role.
*/}}
{{- define "fnevents.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fnevents.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .role }}
fnevents.dev/role: {{ . }}
{{- end }}
{{- end -}}

{{/*
Every object's labels: the selector labels, app.kubernetes.io/component (source, trigger,
function: the kind in the role's `--only` value, as render labels it; or all-in-one,
dapr-proxy, metrics) and Helm's standard labels. Takes root, role and component.
*/}}
{{- define "fnevents.labels" -}}
{{ include "fnevents.selectorLabels" . }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "fnevents.chart" .root }}
{{- end -}}

{{/* The component label of a per-role object: the kind in its `--only` value. */}}
{{- define "fnevents.roleComponent" -}}
{{- first (splitList "/" .role) -}}
{{- end -}}

{{- define "fnevents.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The fnevents Deployment, shared by the all-in-one Deployment and every per-role one; for
per-role values it is the Deployment `fnevents render` prints (tests/k8s/test_chart.py
compares them). Takes a dict:
  root         the chart's top context ($)
  name         the Deployment's name
  role         the fnevents.dev/role label (the role's suffix, or all-in-one)
  component    the app.kubernetes.io/component label
  replicas     the Deployment's replicas
  args         `fnevents run` arguments before --host/--port (--only ROLE)
  extraArgs    arguments after them (allInOne.extraArgs)
  ports        extra container ports [{name, containerPort}]
  env          environment after POD_NAME and PYTHONDONTWRITEBYTECODE
  podAnnotations       extra pod annotations (dapr.io/*)
  singleReplicaReason  why it must stay at one replica (an annotation)
*/}}
{{- define "fnevents.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $select := dict "root" $root "role" .role -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "fnevents.labels" (dict "root" $root "role" .role "component" .component) | nindent 4 }}
  {{- with .singleReplicaReason }}
  annotations:
    fnevents.dev/single-replica-reason: {{ . | quote }}
  {{- end }}
spec:
  replicas: {{ .replicas }}
  selector:
    matchLabels:
      {{- include "fnevents.selectorLabels" $select | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fnevents.labels" (dict "root" $root "role" .role "component" .component) | nindent 8 }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $v.opsPort | quote }}
        prometheus.io/path: /metrics
        {{- with .podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      automountServiceAccountToken: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      containers:
        - name: fnevents
          image: {{ include "fnevents.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            - run
            - -f
            - /etc/fnevents/manifests
            {{- if $v.manifests.secretFiles }}
            - -f
            - /etc/fnevents/secrets
            {{- end }}
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            - --host
            - 0.0.0.0
            - --port
            - {{ $v.opsPort | quote }}
            {{- range .extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            # MQTT $share sources' client ids
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            # the root filesystem is read-only
            - name: PYTHONDONTWRITEBYTECODE
              value: "1"
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: ops
              containerPort: {{ $v.opsPort }}
            {{- with .ports }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: ops
            periodSeconds: 5
            failureThreshold: 3
            timeoutSeconds: 2
          livenessProbe:
            httpGet:
              path: /healthz
              port: ops
            periodSeconds: 10
            failureThreshold: 6
            timeoutSeconds: 2
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - name: manifests
              mountPath: /etc/fnevents/manifests
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- if $v.manifests.secretFiles }}
            - name: secrets
              mountPath: /etc/fnevents/secrets
              readOnly: true
            {{- end }}
      volumes:
        - name: manifests
          configMap:
            name: {{ include "fnevents.manifestsConfigMap" $root }}
        - name: tmp
          emptyDir: {}
        {{- if $v.manifests.secretFiles }}
        - name: secrets
          secret:
            secretName: {{ include "fnevents.secretName" $root }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* A Service for a Deployment's HTTP ports. Takes root, name, role, component, ports. */}}
{{- define "fnevents.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "fnevents.labels" (dict "root" .root "role" .role "component" .component) | nindent 4 }}
spec:
  selector:
    {{- include "fnevents.selectorLabels" (dict "root" .root "role" .role) | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ default .containerPort .port }}
      targetPort: {{ .name }}
    {{- end }}
{{- end -}}
