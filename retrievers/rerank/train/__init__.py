"""Offline training of rerankers (cross-encoder pairs, ICT groups, LTR weights): above the rerankers they
produce, never imported by them."""
