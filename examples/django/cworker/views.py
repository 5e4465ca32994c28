"""The scenarios page: a button per scenario, its output, and the latest stored results."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from celeriac.contrib.django.models import TaskResult

from .scenarios import SCENARIOS


def index(request: HttpRequest) -> HttpResponse:
    output: list[str] = []
    ran = request.POST.get("scenario") if request.method == "POST" else None
    if ran in SCENARIOS:
        try:
            SCENARIOS[ran](output.append, 30.0)
        except Exception as exc:
            output.append(f"FAILED: {type(exc).__name__}: {exc}")
    context = {
        "scenarios": list(SCENARIOS),
        "ran": ran,
        "output": output,
        "results": TaskResult.objects.order_by("-date_done")[:20],
    }
    return render(request, "cworker/index.html", context)
