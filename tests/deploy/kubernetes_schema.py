"""The schema check of check_kubernetes.py: every object against the Kubernetes API models of
Debian's python3-kubernetes (field names, types, required fields), so that a misspelt or
misplaced field fails. Needs /usr/bin/python3 with python3-kubernetes.
"""

import difflib

try:
    import kubernetes.client as k8s
except ImportError:  # the schema check needs it; deploy/install-deps.sh installs it
    k8s = None

MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}


def schema_available():
    """Whether python3-kubernetes is installed (deploy/install-deps.sh installs it)."""
    return k8s is not None


def schema_errors(value, type_name, where):
    """Every field VALUE has that the API model TYPE_NAME does not know, or of a wrong type."""
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: want a list, got {type(value).__name__}"]
        return [e for i, v in enumerate(value)
                for e in schema_errors(v, type_name[5:-1], f"{where}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return [f"{where}: want a map, got {type(value).__name__}"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in value.items() for e in schema_errors(v, inner, f"{where}.{k}")]
    primitive = {"str": str, "int": int, "bool": bool, "float": (int, float),
                 "datetime": str, "date": str}
    if type_name == "object":
        return []
    if type_name in primitive:
        ok = isinstance(value, primitive[type_name]) and not (
            type_name == "int" and isinstance(value, bool))
        return [] if ok else [f"{where}: want {type_name}, got {value!r}"]
    model = getattr(k8s, type_name)
    if not isinstance(value, dict):
        return [f"{where}: want an object ({type_name}), got {value!r}"]
    fields = {json_name: attr for attr, json_name in model.attribute_map.items()}
    errors = []
    for key, v in value.items():
        if key == "_source":
            continue
        if key not in fields:
            hint = difflib.get_close_matches(key, fields, 1)
            errors.append(f"{where}.{key}: no such field in {type_name}" +
                          (f" (did you mean {hint[0]}?)" if hint else ""))
            continue
        errors += schema_errors(v, model.openapi_types[fields[key]], f"{where}.{key}")
    if not errors:  # required fields: the model's own constructor checks them
        try:
            data = {k: v for k, v in value.items() if k != "_source"}
            k8s.ApiClient()._ApiClient__deserialize(data, type_name)
        except (ValueError, TypeError) as e:
            errors.append(f"{where}: {e}")
    return errors


def check_schema(objects):
    """The schema errors of every object; an object of a kind not in MODELS is one."""
    errors = []
    for obj in objects:
        key = (obj.get("apiVersion"), obj.get("kind"))
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if key not in MODELS:
            errors.append(f"{name}: {key} is not a kind these manifests should use")
            continue
        errors += schema_errors(obj, MODELS[key], name)
    return errors
