# log 'logs/a.log' of rule a lacks wildcard {s} of its output
rule a:
    output: "out/{s}.txt"
    log: "logs/a.log"
    shell: "touch {output}"
