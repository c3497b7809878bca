"""The one flow from a video to an answer: :mod:`.pipeline` (encode, prune and prefill once, answer many
questions), :mod:`.results` (what a run gives back), :mod:`.compare` (methods side by side), :mod:`.batch`
(folders of videos), :mod:`.timing`.
"""
