"""Read the dashboard's metrics exposition on stdin with prometheus_client's OpenMetrics parser (the
Python client the Prometheus project maintains, from PyPI) and print each sample as a JSON line:
{"family", "type", "name", "labels", "value"}. The parser is strict: a malformed exposition fails
here, with its error on stderr.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        line = {
            "family": family.name,
            "type": family.type,
            "name": sample.name,
            "labels": sample.labels,
            "value": sample.value,
        }
        print(json.dumps(line))
