"""Train an iris classifier: a support vector machine with calibrated probabilities.

The model predicts the species name from four measurements in centimetres. scikit-learn
1.9 deprecates SVC(probability=True); CalibratedClassifierCV(SVC(), ensemble=False) is
its replacement and gives the class probabilities the service returns.
"""

from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_iris
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import shipml

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

iris = load_iris()
X, y = iris.data, iris.target_names[iris.target]  # labels are the species names
model = make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(random_state=0), ensemble=False))
folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
scores = cross_val_score(model, X, y, cv=folds)
print(f"5-fold accuracy {scores.mean():.3f} ± {scores.std():.3f}")
model.fit(X, y)
shipml.save_model(
    model, training_data=X, feature_names=FEATURES, metrics={"accuracy": scores.mean()}
)
