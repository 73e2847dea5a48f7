"""Vector indexes behind one interface; they hold face ids and vectors, never metadata."""

from faceledger.index.base import VectorIndex
from faceledger.index.faiss_index import FaissIndex, IndexPlan, plan_for

__all__ = ["VectorIndex", "FaissIndex", "IndexPlan", "plan_for"]
