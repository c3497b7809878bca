"""What ``fastvid`` prints: :mod:`.terminal` (the one output sink, number formats, tables that fit), :mod:`.report`
(every command's tables), :mod:`.show` (the picture of what FastVID kept).
"""
