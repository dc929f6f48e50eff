"""Azure ML ``score.py`` scripts, run unchanged the way Microsoft's server runs them.

``azureml-inference-server-http`` is the specification: :mod:`.runtime` sets up the
process and imports the script, :mod:`.inputs` turns a request into ``run()``'s
arguments, :mod:`.answers` writes its return value, :mod:`.raw` provides the
``azureml.contrib.services`` modules of ``@rawhttp`` scripts, :mod:`.swagger` answers
``/swagger.json``, :mod:`.script_check` reads what the script needs from its source.
"""

from shipml.scoring.azureml.answers import ScoreAnswer
from shipml.scoring.azureml.call import ScoreCall
from shipml.scoring.azureml.scorer import AzureMLScorer
from shipml.scoring.azureml.script_check import check_script, script_packages

__all__ = ["AzureMLScorer", "ScoreAnswer", "ScoreCall", "check_script", "script_packages"]
