rule special:
    output: "out/special_{sample}.txt"
    params: tag=config["tag"]
    shell: "echo special {wildcards.sample} {params.tag} > {output}"
